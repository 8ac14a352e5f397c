package timeline

import (
	"strconv"
	"strings"

	"github.com/tcp-playground/playground/pkg/capture"
)

// This file holds the learner's wording for the wire: what each segment
// means in plain words. The capture package decides what a segment is (its
// step, its analysis remarks); the words live here, beside the views that
// show them and the wording of the programs' events (program.go).

// analysisWhy says in plain words what each Wireshark remark means, most
// telling first: a segment with several remarks is explained by the first.
var analysisWhy = [...]struct {
	bit capture.Analysis
	why string
}{
	{capture.SpuriousRetransmission, "sent again, though the receiver had already acknowledged it"},
	{capture.FastRetransmission, "resent at once after duplicate ACKs, without waiting for the timer"},
	{capture.Retransmission, "sent again: the first copy was lost, or its ACK came too late"},
	{capture.OutOfOrder, "it comes after a segment that follows it"},
	{capture.LostSegment, "a gap: a segment before this one never showed up here"},
	{capture.AckedUnseen, "it acknowledges data this capture never saw"},
	{capture.DuplicateAck, "the same ACK again: the receiver is still waiting for a missing segment"},
	{capture.ZeroWindowProbe, "one byte sent to ask whether the receiver has room again"},
	{capture.ZeroWindowProbeAck, "the receiver answers the probe: still no room"},
	{capture.ZeroWindow, "the receiver's buffer is full: the sender must wait"},
	{capture.KeepAlive, "an old sequence number, sent only to get an ACK back; Linux probes a zero window this way"},
	{capture.KeepAliveAck, "the answer to a keep-alive"},
	{capture.WindowUpdate, "the receiver has room again"},
	{capture.WindowFull, "this segment fills the receiver's window: the sender must now wait"},
	{capture.ReusedPorts, "a new connection on the same addresses and ports as an earlier one"},
	{capture.TFOSyn, "TCP Fast Open: the SYN shows a cookie from an earlier connection, so it may carry data"},
	{capture.TFOAck, "TCP Fast Open: the server takes the SYN's data at once and acknowledges it here"},
	{capture.TFOIgnored, "TCP Fast Open refused: the server ignores the data the SYN carried, so it must come again"},
}

// explainAnalysis is the plain-language meaning of the most telling remark
// on s. Wireshark's remarks follow rules about numbers; where the packets
// show the usual meaning is wrong for this segment (its Facts), the
// explanation says what the packets show instead.
func explainAnalysis(s *capture.Segment) string {
	a, f := s.Analysis, s.Facts
	switch {
	case f&capture.SeenAgain != 0:
		return "the same packet captured twice (same ID, checksum and numbers), as on a router's arriving and leaving interfaces; nothing was lost"
	case f&capture.ResendAfterTFOIgnored != 0:
		return "sent again because the server ignored it in the Fast Open SYN; the first copy was not lost"
	case f&capture.SYNAgain != 0 && a&capture.Retransmission != 0:
		return "it repeats this side's own SYN, now with an ACK: both ends sent a SYN (a simultaneous open); nothing was lost"
	}
	for _, n := range analysisWhy {
		if a&n.bit == 0 {
			continue
		}
		switch {
		case n.bit == capture.DuplicateAck && f&capture.DSACK != 0:
			return "the same ACK again, with a D-SACK block: that data arrived twice; nothing is missing"
		case n.bit == capture.DuplicateAck && f&capture.GapBeforeAck == 0:
			return "the same ACK again, answering a segment that came again; nothing is missing"
		case n.bit == capture.KeepAlive && f&capture.PeerWindowZero == 0:
			return "an old sequence number, sent only to get an ACK back: is the peer still there?"
		case n.bit == capture.KeepAlive:
			return "an old sequence number, sent only to get an ACK back; Linux probes a zero window this way"
		case n.bit == capture.WindowUpdate && f&capture.AfterSYN != 0:
			return "the window field changed because a SYN's window is never scaled and this one is; the room did not change"
		}
		return n.why
	}
	return ""
}

// SegmentNote explains a segment in one plain-language line for a learner:
// its handshake or teardown step, what it carries or acknowledges, and
// Wireshark's analysis remarks. It names the sides "client" and "server".
func SegmentNote(s *capture.Segment) string {
	var b strings.Builder
	b.Grow(96)
	// Client and server: the client is the side whose SYN the capture saw
	// first. In a simultaneous open both sides send a SYN; the one seen
	// second is still called the server. A socket connected to itself
	// (self-connect) is both ends: every segment is the client's
	// (FromClient), and the notes call it "the socket".
	sender, receiver := "server", "client"
	if s.FromClient {
		sender, receiver = "client", "server"
	}
	if s.Facts&capture.SelfConnect != 0 {
		sender, receiver = "socket", "socket"
	}
	if s.Cut == capture.CutHeader {
		// Nothing past the ports was captured: say so, and nothing else.
		if s.Src.Port() == 0 && s.Dst.Port() == 0 {
			return "TCP header cut by the snap length: only the addresses are known"
		}
		return "TCP header cut by the snap length: only the addresses and ports are known"
	}
	if s.Facts&capture.SeenAgain != 0 {
		// Not a new segment: neither a step nor a resend, whatever the
		// numbers make Wireshark call it.
		note := "the same packet again (same ID, checksum and numbers): captured twice, arriving and leaving"
		if s.Analysis != 0 {
			note += "; tshark: " + s.Analysis.String()
		}
		return note
	}
	if s.Step != capture.StepNone {
		b.WriteString(s.Step.String())
		b.WriteString(": ")
	}
	switch s.Step {
	case capture.StepHandshake1:
		if s.FromClient {
			b.WriteString("the client asks to open a connection")
		} else {
			b.WriteString("the server side asks too: both ends sent a SYN (a simultaneous open)")
		}
	case capture.StepHandshake2:
		b.WriteString("the " + sender + "'s kernel agrees")
	case capture.StepHandshake3:
		b.WriteString("established")
	case capture.StepTeardown1:
		b.WriteString("the " + sender + " has nothing more to send")
	case capture.StepTeardown2:
		b.WriteString("the " + sender + "'s kernel acknowledges the " + receiver + "'s FIN")
	case capture.StepTeardown23:
		b.WriteString("the " + sender + " acknowledges and closes its side too")
	case capture.StepTeardown3:
		b.WriteString("the " + sender + " closes its side too")
	case capture.StepTeardown4:
		b.WriteString("closed; the " + sender + " waits in TIME_WAIT")
	case capture.StepRefused:
		b.WriteString("connection refused: nothing listens on port " + strconv.Itoa(int(s.Src.Port())))
	case capture.StepReset:
		b.WriteString("the " + sender + " aborts the connection")
	default:
		switch s.Kind {
		case capture.KindRST:
			if s.Facts&capture.AfterReset != 0 {
				b.WriteString("reset again: the " + sender + "'s kernel answers a segment still on its way after the reset")
			}
		case capture.KindData:
			b.WriteString("the " + sender + " sends " + Plural(s.Len, "byte"))
		case capture.KindACK:
			// ack is the next sequence number expected; the SYN took number
			// 0, and a FIN, once acknowledged, the one after the last byte.
			last := s.Ack - 1
			if s.AcksFIN {
				last--
			}
			if s.Flags&capture.FlagACK != 0 && last > 0 {
				b.WriteString("the " + sender + "'s kernel confirms bytes up to " + strconv.FormatUint(uint64(last), 10))
				if s.Facts&capture.AckBeyondSeen != 0 {
					b.WriteString(" (the capture missed some of them)")
				}
			}
		}
	}
	if s.Step != capture.StepNone && s.Len > 0 {
		b.WriteString(", and it carries " + Plural(s.Len, "byte"))
	}
	if s.Analysis != 0 {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s.Analysis.String())
		b.WriteString(" (" + explainAnalysis(s) + ")")
	}
	if s.Cut == capture.CutOptions {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString("TCP options cut by the snap length")
	}
	return b.String()
}

// Plural writes a count with its unit: "1 byte", "17 bytes".
func Plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
