package capture

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSteps checks, for recorded conversations, each segment's kind and its
// place in the handshake or teardown, and which side is the client.
func TestSteps(t *testing.T) {
	// Each line: "→" from the client or "←" from the server, the kind, the step.
	tests := []struct {
		file string
		want []string
	}{
		{"nc-hello.pcap", []string{
			"→ SYN handshake 1/3",
			"← SYN+ACK handshake 2/3",
			"→ ACK handshake 3/3",
			"→ DATA",
			"← ACK",
			"← DATA",
			"→ ACK",
			"→ FIN teardown 1/4",
			"← FIN teardown 2+3/4",
			"→ ACK teardown 4/4",
		}},
		{"http-curl.pcap", []string{
			"→ SYN handshake 1/3",
			"← SYN+ACK handshake 2/3",
			"→ ACK handshake 3/3",
			"→ DATA",
			"← ACK",
			"← DATA",
			"→ ACK",
			"← DATA",
			"→ ACK",
			"→ FIN teardown 1/4",
			"← FIN teardown 2+3/4",
			"→ ACK teardown 4/4",
		}},
		{"refused.pcap", []string{
			"→ SYN handshake 1/3",
			"← RST refused",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			segs := readFile(t, "testdata/"+tt.file)
			var got []string
			for _, s := range segs {
				dir := "←"
				if s.FromClient {
					dir = "→"
				}
				got = append(got, strings.TrimSpace(dir+" "+s.Kind.String()+" "+s.Step.String()))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestSweepChangesNothing replays every capture twice, once sweeping the
// connection table after every segment: what a segment is (its stream,
// numbers and remarks) must depend on capture time only, never on when the
// table was last swept. late-fin.pcap is the case that broke: the client
// resends its FIN 3.3 s and 6.8 s after the close, and tshark keeps those
// in the closed connection's stream.
func TestSweepChangesNothing(t *testing.T) {
	for _, path := range testdataCaptures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := readFile(t, path)
			r, err := OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r.tracker.setSweepEvery(1)
			i := 0
			for got, err := range r.Segments(context.Background()) {
				if err != nil {
					t.Fatal(err)
				}
				if i >= len(want) {
					t.Fatalf("more segments with sweeps than without")
				}
				w := want[i]
				if got.Stream != w.Stream || got.Seq != w.Seq || got.Ack != w.Ack || got.Analysis != w.Analysis || got.Step != w.Step {
					t.Errorf("frame %d swept: stream %d seq %d ack %d %q %q; unswept: stream %d seq %d ack %d %q %q",
						got.Frame, got.Stream, got.Seq, got.Ack, got.Step, got.Analysis, w.Stream, w.Seq, w.Ack, w.Step, w.Analysis)
				}
				i++
			}
		})
	}
	segs := readFile(t, "testdata/late-fin.pcap")
	if last := segs[len(segs)-1]; last.Stream != 0 || last.Step != StepNone {
		t.Errorf("late-fin.pcap: the last re-ACK is in stream %d with step %q, want stream 0 and no step", last.Stream, last.Step)
	}
}

// TestClosedConnectionsBounded: a burst of short connections leaves at most
// maxClosed closed ones in the table, and none once closedLinger has passed.
func TestClosedConnectionsBounded(t *testing.T) {
	tr := NewTracker()
	base := time.Unix(1700000000, 0)
	cli := netip.MustParseAddrPort("192.0.2.1:1")
	srv := netip.MustParseAddrPort("192.0.2.2:4800")
	const n = maxClosed + 5000
	for i := 0; i < n; i++ {
		c := netip.AddrPortFrom(cli.Addr(), uint16(1+i%60000))
		c = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i/60000)}), c.Port())
		ts := base.Add(time.Duration(i) * time.Millisecond)
		tr.Track(&Packet{Src: c, Dst: srv, Seq: 100, Flags: FlagSYN}, ts, 1)
		tr.Track(&Packet{Src: c, Dst: srv, Seq: 100, Ack: 101, Flags: FlagRST | FlagACK}, ts, 2)
	}
	tr.sweep(base.Add(n * time.Millisecond))
	if got := tr.Connections(); got > maxClosed {
		t.Errorf("%d connections in the table after %d closed ones, want at most %d", got, n, maxClosed)
	}
	tr.sweep(base.Add(n*time.Millisecond + closedLinger + time.Second))
	if got := tr.Connections(); got != 0 {
		t.Errorf("%d connections still in the table after closedLinger", got)
	}
}
