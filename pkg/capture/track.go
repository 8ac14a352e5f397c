package capture

import (
	"math"
	"net/netip"
	"time"
)

// Wireshark (tshark 4.0) never forgets a conversation: a 4-tuple starts a
// new one only with a pure SYN whose sequence number differs from the ISN
// of its direction (or a SYN+ACK with a new ISN, which renumbers the
// server's side). Every other late segment, however late, belongs to the
// old stream. The tracker follows that rule, but must stay bounded in
// memory on a capture that runs for days, so it forgets connections by
// capture time, never by how often the table happens to be swept: a
// segment finds its connection if, and only if, it comes within
// closedLinger of the close or within idleEvict of the connection's last
// segment. Only past those bounds does it differ from tshark.
const (
	// closedLinger is how long (in capture time) a closed connection stays
	// in the table after its last FIN was acknowledged or an RST, so that
	// late segments still find their connection's numbers. Linux resends an
	// unacknowledged FIN from LAST_ACK with backoff for up to ~100 s
	// (tcp_orphan_retries), and the other side stays in TIME_WAIT for 60 s
	// re-acknowledging it: two minutes cover both.
	closedLinger = 2 * time.Minute
	// maxClosed bounds how many closed connections linger at once; past it
	// the ones closed longest ago are forgotten first (a burst of short
	// connections must not grow the table without bound).
	maxClosed = 1 << 16
	// idleEvict is how long (in capture time) a connection may go without a
	// segment before it leaves the table, so that a long capture of
	// connections that never closed stays bounded in memory.
	idleEvict = 10 * time.Minute
	// defaultSweepEvery is how often, in segments, the table is swept.
	defaultSweepEvery = 4096
	// seenAgainWithin: an identical packet this soon after the first is
	// the same packet captured twice, not a resend.
	seenAgainWithin = 100 * time.Millisecond
)

// connKey names a connection regardless of direction: the lower endpoint first.
type connKey struct{ a, b netip.AddrPort }

func keyOf(src, dst netip.AddrPort) connKey {
	if src.Compare(dst) < 0 {
		return connKey{src, dst}
	}
	return connKey{dst, src}
}

// half is what the tracker knows of one direction of a connection.
type half struct {
	addr netip.AddrPort

	baseSet bool   // base is known: relative numbers are raw minus base
	base    uint32 // the ISN (SYN seen) or first seq - 1 (SYN not seen)
	synSeen bool

	// Wireshark's per-direction analysis state (tcp_flow_t and its
	// tcp_analyze_seq_info), kept the way packet-tcp.c keeps it so that the
	// remarks match tshark's: raw numbers, and 0 meaning "not known yet".
	winScale        int8 // -1 unknown, -2 "no scaling" (a SYN lacked the option)
	isFirstAck      bool // a SYN was sent and no plain ACK yet: windows not yet scaled
	nextSeq         uint32
	nextSeqTime     time.Time
	maxSeqToBeAcked uint32
	lastAck         uint32    // the ack field of this side's last segment
	lastAckTime     time.Time // when this side last sent anything
	window          uint32    // raw window this side last advertised; MaxUint32 before any
	lastSegFlags    Analysis  // remarks on this side's last segment

	// This side's previous segment, to recognize the same packet captured
	// twice; and whether it was a SYN, and whether this side sent a pure SYN.
	prev struct {
		seq, ack  uint32
		ipid, sum uint16
		flags     Flags
		len       int
	}
	prevValid bool
	prevSYN   bool
	sentSYN   bool
	dupAcks   int // duplicate ACKs in a row; -1: "ACKed unseen segment" disarmed (analyze)

	finSeen  bool
	finSeq   uint32 // raw seq of the FIN
	finAcked bool   // the other side acknowledged this side's FIN
}

// conn is one tracked connection.
type conn struct {
	stream   uint64
	client   int // index into halves of the side that sent the SYN
	halves   [2]half
	synAcked bool // handshake 3/3 seen
	finOrder int  // 0 none, else index+1 of the side that sent the first FIN
	closed   bool
	// Capture times in Unix nanoseconds: compared on every segment, and
	// integer arithmetic costs less than time.Time.Sub.
	closedAt  int64
	lastSeen  int64
	refusable bool // only a SYN so far: an RST now means "refused"
	reset     bool // an RST was seen
	self      bool // both ends are one socket (self-connect)

	tfoSYNData bool // a SYN with a Fast Open cookie carried data
	tfoIgnored bool // and the SYN+ACK did not acknowledge it

	lastSYNTime time.Time     // Wireshark's ts_mru_syn: the latest pure SYN
	firstRTT    time.Duration // Wireshark's ts_first_rtt: SYN to first ACK
}

// Tracker follows TCP connections across segments: which side is the client,
// relative sequence numbers, handshake and teardown steps, and Wireshark's
// analysis remarks. It is not safe for concurrent use.
type Tracker struct {
	conns      map[connKey]*conn
	nextStream uint64
	sweepEvery uint64 // segments between sweeps; tests set 1 to show sweeps change nothing
	untilSweep uint64 // segments left before the next sweep

	// closedQueue lists connections in the order they closed, so that the
	// sweep forgets the oldest first without scanning the table for them;
	// closedHead is the first entry still to look at.
	closedQueue []closedEntry
	closedHead  int
}

type closedEntry struct {
	key connKey
	c   *conn
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	t := &Tracker{conns: make(map[connKey]*conn)}
	t.setSweepEvery(defaultSweepEvery)
	return t
}

func (t *Tracker) setSweepEvery(n uint64) { t.sweepEvery, t.untilSweep = n, n }

// Connections is the number of connections in the table now.
func (t *Tracker) Connections() int { return len(t.conns) }

// Streams is the number of connections seen so far.
func (t *Tracker) Streams() uint64 { return t.nextStream }

// Track annotates one decoded packet captured at ts as the frame-th frame.
func (t *Tracker) Track(p *Packet, ts time.Time, frame uint64) Segment {
	if t.untilSweep--; t.untilSweep == 0 { // a countdown: no division per segment
		t.untilSweep = t.sweepEvery
		t.sweep(ts)
	}
	key := keyOf(p.Src, p.Dst)
	c := t.conns[key]
	if p.Cut == CutHeader {
		return t.cutSegment(c, p, ts, frame)
	}
	now := ts.UnixNano()
	if c != nil && c.expired(now) {
		// Forgotten by capture time, whether or not a sweep ran since.
		delete(t.conns, key)
		c = nil
	}
	pureSYN := p.Flags&(FlagSYN|FlagACK) == FlagSYN
	var reused Analysis
	if c != nil && pureSYN && c.isNewSYN(p) {
		// The 4-tuple is reused by a new connection (Wireshark: a SYN whose
		// seq differs from its direction's base starts a new stream, and is
		// flagged tcp.analysis.reused_ports; a SYN with the same seq is a
		// retransmission and tshark 4.0 does not flag it).
		delete(t.conns, key)
		c = nil
		reused = ReusedPorts
	}
	if c == nil {
		c = t.newConn(key, p)
	}
	wasClosed := c.closed
	c.lastSeen = now

	from := 0
	if c.halves[1].addr == p.Src {
		from = 1
	}
	fwd, rev := &c.halves[from], &c.halves[1-from]

	if pureSYN && fwd.baseSet {
		// A retransmitted SYN: forget what the lost attempt advanced, as
		// Wireshark does (its issue 17616).
		fwd.nextSeq = fwd.maxSeqToBeAcked
	}
	switch {
	case !fwd.baseSet && p.Flags&FlagSYN != 0:
		fwd.base, fwd.baseSet = p.Seq, true
	case !fwd.baseSet:
		fwd.base, fwd.baseSet = p.Seq-1, true // mid-stream: the first segment seen is byte 1
	case p.Flags&(FlagSYN|FlagACK) == FlagSYN|FlagACK && p.Seq != fwd.base:
		// A SYN+ACK with a new ISN: the server side of a reused 4-tuple
		// (Wireshark renumbers that direction and flags reused_ports).
		fwd.base = p.Seq
		reused = ReusedPorts
	}
	if p.Flags&FlagSYN != 0 {
		fwd.synSeen = true
	}
	if p.Flags&FlagACK != 0 && !rev.baseSet {
		// The other side's SYN was not captured: its first byte is the one
		// this segment expects next.
		rev.base, rev.baseSet = p.Ack-1, true
	}

	facts := factsOf(fwd, rev, p, ts)
	if c.self {
		facts |= SelfConnect
	}
	analysis := analyze(c, fwd, rev, p, ts) | reused | c.fastOpen(rev, p)
	if analysis&Retransmission != 0 && c.tfoIgnored && from == c.client && p.Seq-fwd.base == 1 {
		facts |= ResendAfterTFOIgnored
	}
	c.learnAfter(fwd, rev, p, ts)
	if c.reset && p.Flags&FlagRST != 0 {
		facts |= AfterReset
	}

	seg := Segment{
		Time:        ts,
		Frame:       frame,
		Src:         p.Src,
		Dst:         p.Dst,
		Stream:      c.stream,
		FromClient:  from == c.client,
		Flags:       p.Flags,
		Kind:        kindOf(p.Flags, p.Len),
		Seq:         p.Seq - fwd.base,
		RawSeq:      p.Seq,
		Len:         p.Len,
		Window:      p.Window,
		WindowScale: -1,
		MSS:         p.MSS,
		Analysis:    analysis,
		Facts:       facts,
		Cut:         p.Cut,
	}
	if facts&SelfConnect != 0 {
		// One socket is both ends: it sent the SYN, so it is the client,
		// in both directions (which are one here).
		seg.FromClient = true
	}
	if p.Flags&FlagACK != 0 {
		seg.Ack, seg.RawAck = p.Ack-rev.base, p.Ack
	}
	if p.Flags&FlagSYN == 0 && fwd.winScale >= 0 {
		seg.WindowScale = fwd.winScale // Wireshark never scales a SYN's window
	}
	seg.previewLen = uint8(copy(seg.preview[:], p.Payload))
	seg.AcksFIN = p.Flags&FlagACK != 0 && rev.finSeen && seqGT(p.Ack, rev.finSeq)
	if facts&SelfConnect != 0 {
		// One socket talks to itself: its own FIN is the one it acknowledges.
		seg.AcksFIN = p.Flags&FlagACK != 0 && fwd.finSeen && seqGT(p.Ack, fwd.finSeq)
	}
	seg.Step = c.step(from, p, &seg)
	if c.halves[0].sentSYN && c.halves[1].sentSYN {
		seg.Facts |= BothSentSYN
	}
	if c.closed && !wasClosed {
		t.closedQueue = append(t.closedQueue, closedEntry{key, c})
	}
	return seg
}

// cutSegment is a segment whose fixed TCP header the snap length cut: it
// has no numbers to track, so it changes nothing; it takes the stream of
// its 4-tuple's connection when there is one (tshark gives it none).
func (t *Tracker) cutSegment(c *conn, p *Packet, ts time.Time, frame uint64) Segment {
	seg := Segment{Time: ts, Frame: frame, Src: p.Src, Dst: p.Dst, Stream: NoStream,
		Kind: KindCut, WindowScale: -1, Cut: CutHeader}
	switch {
	case c != nil && !c.expired(ts.UnixNano()):
		seg.Stream = c.stream
		seg.FromClient = c.halves[c.client].addr == p.Src
	default:
		seg.FromClient = p.Src.Port() > p.Dst.Port() // as for a connection seen mid-stream
	}
	return seg
}

// fastOpen gives Wireshark's TCP Fast Open remarks: a SYN with a cookie;
// a SYN+ACK whose ack goes beyond the SYN (it took the SYN's data), or that
// does not although the SYN carried data (it ignored them).
func (c *conn) fastOpen(rev *half, p *Packet) Analysis {
	switch {
	case p.Flags&(FlagSYN|FlagACK) == FlagSYN && p.TFOCookie:
		if p.Len > 0 {
			c.tfoSYNData = true
		}
		return TFOSyn
	case p.Flags&(FlagSYN|FlagACK) == FlagSYN|FlagACK && p.Ack-rev.base > 1:
		return TFOAck
	case p.Flags&(FlagSYN|FlagACK) == FlagSYN|FlagACK && c.tfoSYNData:
		c.tfoIgnored = true
		return TFOIgnored
	}
	return 0
}

// factsOf reads what the packet shows against this side's and the other
// side's state before it, and remembers this packet for the next.
func factsOf(fwd, rev *half, p *Packet, ts time.Time) Facts {
	var f Facts
	// A second capture of one packet comes microseconds after the first; a
	// resend that happens to be identical (no timestamps, IP ID 0) comes
	// at least one retransmission timeout (200 ms on Linux) later.
	if fwd.prevValid && fwd.prev.seq == p.Seq && fwd.prev.ack == p.Ack && fwd.prev.ipid == p.IPID &&
		fwd.prev.sum == p.Checksum && fwd.prev.flags == p.Flags && fwd.prev.len == p.Len &&
		ts.Sub(fwd.lastAckTime) < seenAgainWithin {
		f |= SeenAgain
	}
	if p.DSACK {
		f |= DSACK
	}
	// With SACK (Linux's default) a gap shows as a block beyond the ack;
	// without, as bytes the other side was seen sending beyond it.
	if p.Flags&FlagACK != 0 && (p.SACKAbove || !p.DSACK && rev.nextSeq != 0 && seqGT(rev.nextSeq, p.Ack)) {
		f |= GapBeforeAck
	}
	if rev.window == 0 {
		f |= PeerWindowZero
	}
	if p.Flags&FlagACK != 0 && rev.nextSeq != 0 && seqGT(p.Ack, rev.nextSeq) {
		f |= AckBeyondSeen
	}
	if fwd.prevSYN {
		f |= AfterSYN
	}
	if p.Flags&(FlagSYN|FlagACK) == FlagSYN|FlagACK && fwd.sentSYN && fwd.baseSet && p.Seq == fwd.base {
		f |= SYNAgain
	}
	fwd.prev.seq, fwd.prev.ack, fwd.prev.ipid, fwd.prev.sum, fwd.prev.flags, fwd.prev.len = p.Seq, p.Ack, p.IPID, p.Checksum, p.Flags, p.Len
	fwd.prevValid = true
	fwd.prevSYN = p.Flags&FlagSYN != 0
	if p.Flags&(FlagSYN|FlagACK) == FlagSYN {
		fwd.sentSYN = true
	}
	return f
}

// expired reports whether the connection is past the bounds for which the
// tracker remembers it, at capture time now.
func (c *conn) expired(now int64) bool {
	return c.closed && now-c.closedAt > int64(closedLinger) || now-c.lastSeen > int64(idleEvict)
}

// learnAfter updates what Wireshark learns from a segment's header once its
// analysis is done: window scaling, and the initial round-trip time.
func (c *conn) learnAfter(fwd, rev *half, p *Packet, ts time.Time) {
	if p.WindowScale >= 0 {
		fwd.winScale = p.WindowScale
	}
	switch {
	case p.Flags&FlagSYN != 0 && p.Cut == CutOptions && p.WindowScale < 0:
		// The option may have been beyond the cut: the scale stays
		// unknown (tshark, too, learns nothing from options it lacks).
		fwd.isFirstAck = true
	case p.Flags&FlagSYN != 0:
		// Scaling is on only when both SYNs carried the option.
		if fwd.winScale == -1 {
			fwd.winScale, rev.winScale = -2, -2
		} else if p.Flags&FlagACK != 0 && rev.winScale == -2 {
			fwd.winScale = -2
		}
		fwd.isFirstAck = true
	case p.Flags&FlagACK != 0:
		fwd.isFirstAck = false
	}
	switch {
	case p.Flags&(FlagSYN|FlagACK) == FlagSYN:
		c.lastSYNTime = ts
	case p.Flags&(FlagSYN|FlagACK) == FlagACK && !c.lastSYNTime.IsZero() && c.firstRTT == 0:
		c.firstRTT = ts.Sub(c.lastSYNTime)
	}
}

// isNewSYN reports whether a SYN on an existing 4-tuple opens a new
// connection rather than retransmitting the first one's SYN.
func (c *conn) isNewSYN(p *Packet) bool {
	h := &c.halves[0]
	if c.halves[1].addr == p.Src {
		h = &c.halves[1]
	}
	return h.baseSet && h.base != p.Seq
}

func (t *Tracker) newConn(key connKey, p *Packet) *conn {
	c := &conn{stream: t.nextStream}
	t.nextStream++
	c.halves[0].addr, c.halves[1].addr = p.Src, p.Dst
	c.self = p.Src == p.Dst
	for i := range c.halves {
		c.halves[i].winScale = -1
		c.halves[i].window = math.MaxUint32
	}
	switch {
	case p.Flags&FlagSYN != 0 && p.Flags&FlagACK == 0:
		c.client = 0 // the sender of a SYN is the client
		c.refusable = true
	case p.Flags&FlagSYN != 0:
		c.client = 1 // a SYN+ACK comes from the server
	case p.Src.Port() < p.Dst.Port():
		c.client = 1 // mid-stream: guess that the lower port is the server's
	default:
		c.client = 0
	}
	t.conns[key] = c
	return c
}

// step places the segment in the handshake or teardown, and updates the
// connection's opening and closing state.
func (c *conn) step(from int, p *Packet, seg *Segment) Step {
	fwd, rev := &c.halves[from], &c.halves[1-from]
	f := p.Flags
	ackAcks := func(rawSeq uint32) bool { // this segment acknowledges the byte at rawSeq
		return f&FlagACK != 0 && seqGT(p.Ack, rawSeq)
	}
	switch {
	case f&FlagRST != 0 && c.reset:
		return StepNone // answers a segment still in flight after the reset
	case f&FlagRST != 0:
		refused := c.refusable && from != c.client
		c.reset = true
		c.closed, c.closedAt = true, seg.Time.UnixNano()
		if refused {
			return StepRefused
		}
		return StepReset
	case f&FlagSYN != 0 && f&FlagACK == 0:
		return StepHandshake1
	case f&FlagSYN != 0:
		c.refusable = false
		return StepHandshake2
	}
	c.refusable = false

	step := StepNone
	if !c.synAcked && from == c.client && c.halves[1-c.client].synSeen && fwd.synSeen && ackAcks(rev.base) {
		// The client's first segment that acknowledges the server's SYN
		// completes the handshake; only a bare ACK is named for it (after a
		// Fast Open SYN the server ignored, data come first).
		c.synAcked = true
		if p.Len == 0 && f&FlagFIN == 0 {
			step = StepHandshake3
		}
	}
	ackedFIN := rev.finSeen && !rev.finAcked && ackAcks(rev.finSeq)
	if ackedFIN {
		rev.finAcked = true
	}
	if f&FlagFIN != 0 && !fwd.finSeen {
		fwd.finSeen, fwd.finSeq = true, p.Seq+uint32(p.Len)
		switch {
		case c.finOrder == 0:
			c.finOrder = from + 1
			return StepTeardown1
		case ackedFIN:
			return StepTeardown23
		default:
			return StepTeardown3
		}
	}
	if ackedFIN {
		if fwd.finSeen && fwd.finAcked || fwd.finSeen && c.finOrder == from+1 {
			// The first closer acknowledges the second FIN: both are done.
			c.closed, c.closedAt = true, seg.Time.UnixNano()
			return StepTeardown4
		}
		return StepTeardown2
	}
	return step
}

// sweep drops the connections expired at capture time now, and the oldest
// closed ones beyond maxClosed.
func (t *Tracker) sweep(at time.Time) {
	now := at.UnixNano()
	for t.closedHead < len(t.closedQueue) {
		e := t.closedQueue[t.closedHead]
		if t.conns[e.key] == e.c && e.c.closed && len(t.closedQueue)-t.closedHead <= maxClosed && !e.c.expired(now) {
			break // the oldest closed connection still lingers: so do the newer ones
		}
		if t.conns[e.key] == e.c && (e.c.expired(now) || len(t.closedQueue)-t.closedHead > maxClosed) {
			delete(t.conns, e.key)
		}
		t.closedQueue[t.closedHead] = closedEntry{}
		t.closedHead++
	}
	if t.closedHead > len(t.closedQueue)/2 {
		n := copy(t.closedQueue, t.closedQueue[t.closedHead:])
		clear(t.closedQueue[n:])
		t.closedQueue, t.closedHead = t.closedQueue[:n], 0
	}
	for k, c := range t.conns {
		if c.expired(now) {
			delete(t.conns, k)
		}
	}
}

// seqGT compares sequence numbers modulo 2^32 (RFC 1982 serial arithmetic).
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }

// seqLT is seqGT's mirror.
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }
