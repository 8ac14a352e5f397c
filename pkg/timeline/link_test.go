package timeline

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A link's drop and a congestion window change read as what they are, in
// the log's words and in JSON.
func TestLinkAndCwndEvents(t *testing.T) {
	client, server := netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("198.51.100.1:4000")
	drop := LinkEventOf(LinkEvent{Time: time.Now(), What: "dropped", Reason: "rule: drop every SYN client→server",
		ClientToServer: true, Src: client, Dst: server, Flags: "S"})
	if got := ProgramSummary(&drop) + "; " + ProgramNote(&drop); !strings.Contains(got, "→ [S]") || !strings.Contains(got, "never reaches the other side (rule: drop every SYN") {
		t.Errorf("drop reads %q", got)
	}
	j := ProgramToJSON(drop)
	if j.Source != "link" || j.Kind != "dropped" || j.Side != "client" || j.Flags != "S" || j.Local != client.String() || j.Detail == "" {
		t.Errorf("drop's JSON %+v", j)
	}
	data := LinkEventOf(LinkEvent{What: "dropped", ClientToServer: true, Src: client, Dst: server, Flags: "P.", Len: 1448})
	if data.PayloadLen() != 1448 || ProgramToJSON(data).Len != 1448 {
		t.Errorf("a dropped data segment's length: %d", data.PayloadLen())
	}

	cut := KernelEventOf(KernelEvent{Kind: KernelCwnd, Side: SideClient, Local: client, Remote: server,
		Cwnd: 245, Peak: 290, InFlight: 248, Ssthresh: 203, Phase: PhaseRecovery})
	if got := ProgramSummary(&cut); got != "client cwnd 245 (peak 290) · 248 in flight · ssthresh 203 · recovery" {
		t.Errorf("cwnd reads %q", got)
	}
	if j := ProgramToJSON(cut); j.Kind != "cwnd" || j.Cwnd == nil || *j.Cwnd != 245 || j.Ssthresh != 203 || j.Phase != "recovery" {
		t.Errorf("cwnd's JSON %+v", j)
	}
}
