package capture

import "time"

// Thresholds of Wireshark's retransmission analysis (packet-tcp.c).
const (
	// fastRetransmitWindow: a retransmission this soon after the peer's
	// latest segment, following two duplicate ACKs, is a fast retransmission.
	fastRetransmitWindow = 20 * time.Millisecond
	// defaultOutOfOrderWindow: without a measured initial RTT, a segment
	// that goes back this soon after the sequence last advanced is taken as
	// out of order rather than retransmitted.
	defaultOutOfOrderWindow = 3 * time.Millisecond
)

// analyze applies Wireshark's TCP sequence analysis (tcp_analyze_sequence_number
// in epan/dissectors/packet-tcp.c, as tshark 4.0 runs it) to one segment and
// updates the per-direction state. The order of the checks, the early exits
// and the quirks (0 meaning "unknown", raw unscaled windows, the ack field
// compared even without the ACK flag) are Wireshark's, so that the remarks
// agree with tshark's on every capture; the tests compare them frame by frame.
func analyze(c *conn, fwd, rev *half, p *Packet, ts time.Time) Analysis {
	seq, ack, seglen, window := p.Seq, p.Ack, uint32(p.Len), uint32(p.Window)
	synFinRst := p.Flags&(FlagSYN|FlagFIN|FlagRST) != 0
	var a Analysis

	// These checks may end early ("goto finished_fwd" in the C source).
	func() {
		if seglen == 1 && seq == fwd.nextSeq && rev.window == 0 {
			a |= ZeroWindowProbe
			return
		}
		if window == 0 && !synFinRst {
			a |= ZeroWindow
		}
		if fwd.nextSeq != 0 && seqGT(seq, fwd.nextSeq) && p.Flags&FlagRST == 0 {
			a |= LostSegment
			// A gap re-arms "ACKed segment that wasn't captured" (below).
			fwd.dupAcks = 0
		}
		if (seglen == 0 || seglen == 1) && seq == fwd.nextSeq-1 && !synFinRst {
			a |= KeepAlive
		}
		if seglen == 0 && window != 0 && window != fwd.window && seq == fwd.nextSeq && ack == fwd.lastAck && !synFinRst {
			a |= WindowUpdate
		}
		if seglen > 0 && rev.winScale != -1 && !synFinRst {
			shift := uint(0)
			if !rev.isFirstAck && rev.winScale != -2 {
				shift = uint(rev.winScale)
			}
			if seq+seglen == rev.lastAck+(rev.window<<shift) {
				a |= WindowFull
			}
		}
		sameAsBefore := seglen == 0 && window == fwd.window && seq == fwd.nextSeq && ack == fwd.lastAck && !synFinRst
		if sameAsBefore && window != 0 && rev.lastSegFlags&KeepAlive != 0 {
			a |= KeepAliveAck
			return
		}
		if sameAsBefore && window == 0 && rev.lastSegFlags&ZeroWindowProbe != 0 {
			a |= ZeroWindowProbeAck
			return
		}
		if sameAsBefore && window != 0 {
			if fwd.dupAcks == -1 {
				fwd.dupAcks = 1
			} else {
				fwd.dupAcks++
			}
			a |= DuplicateAck
		}
	}()

	// finished_fwd:
	if ack != fwd.lastAck {
		fwd.dupAcks = 0
	}
	if rev.maxSeqToBeAcked != 0 && seqGT(ack, rev.maxSeqToBeAcked) && p.Flags&FlagACK != 0 {
		// This acknowledges beyond the other side's highest contiguous byte
		// seen. The rule below is tshark 4.0.17's as its output shows it on
		// captures where tcpdump lost packets (capture-drops*.pcap; the
		// packet-tcp.c at hand, a 3.x one, differs): the ACK is flagged
		// only while the other side is armed (its dup-ack counter is 0),
		// which disarms it (-1) until that side skips ahead again (a gap,
		// "previous segment not captured", above) or its own ack changes
		// (finished_fwd above); and the bound moves up to the other side's
		// highest byte, so later ACKs of what was seen since are not
		// flagged. On a one-way transfer the sender's ack never changes: a
		// rule that re-armed only on that (the previous port) flagged the
		// first gap and none after it, and one that never disarms flags
		// ACKs that tshark does not.
		if rev.dupAcks == 0 {
			a |= AckedUnseen
		}
		rev.dupAcks = -1
		rev.maxSeqToBeAcked = rev.nextSeq
	}

	if seglen > 0 || p.Flags&(FlagSYN|FlagFIN) != 0 {
		a |= retransmissionKind(c, fwd, rev, p, ts, a)
	}

	// Remember what this segment advanced.
	nextSeq := seq + seglen
	if p.Flags&(FlagSYN|FlagFIN) != 0 {
		nextSeq++
	}
	probe := a&ZeroWindowProbe != 0
	if (seqGT(nextSeq, fwd.nextSeq) || fwd.nextSeq == 0) && !probe {
		fwd.nextSeq, fwd.nextSeqTime = nextSeq, ts
	}
	if (seq == fwd.maxSeqToBeAcked || fwd.maxSeqToBeAcked == 0) && !probe {
		fwd.maxSeqToBeAcked = fwd.nextSeq
	}
	fwd.window = window
	fwd.lastAck = ack
	fwd.lastAckTime = ts
	fwd.lastSegFlags = a
	return a
}

// retransmissionKind decides whether a segment that carries data, SYN or FIN
// goes back in sequence space, and if so which kind of resend it is.
func retransmissionKind(c *conn, fwd, rev *half, p *Packet, ts time.Time, sofar Analysis) Analysis {
	seq, seglen := p.Seq, uint32(p.Len)
	notAdvanced := fwd.nextSeq != 0 && seqLT(seq, fwd.nextSeq)
	if sofar&KeepAlive != 0 {
		return 0
	}
	if seglen > 1 && fwd.nextSeq-1 == seq {
		notAdvanced = false
	}
	if seglen > 0 && rev.lastAck != 0 && !seqGT(seq+seglen, rev.lastAck) {
		// Everything in it was acknowledged already.
		return SpuriousRetransmission | Retransmission
	}
	// Fast retransmission takes precedence over out-of-order (Wireshark's
	// default for tcp.fastrt_supersedes_ooo). A negative time never counts:
	// Wireshark's unsigned arithmetic makes it huge.
	sincePeer := ts.Sub(rev.lastAckTime)
	if notAdvanced && rev.dupAcks >= 2 && rev.lastAck == seq && sincePeer >= 0 && sincePeer < fastRetransmitWindow {
		return FastRetransmission | Retransmission
	}
	oooWindow := c.firstRTT
	if oooWindow == 0 {
		oooWindow = defaultOutOfOrderWindow
	}
	synFin := uint32(0)
	if p.Flags&(FlagSYN|FlagFIN) != 0 {
		synFin = 1
	}
	sinceAdvance := ts.Sub(fwd.nextSeqTime)
	if notAdvanced && sinceAdvance >= 0 && sinceAdvance < oooWindow && fwd.nextSeq != seq+seglen+synFin {
		return OutOfOrder
	}
	if notAdvanced {
		return Retransmission
	}
	return 0
}
