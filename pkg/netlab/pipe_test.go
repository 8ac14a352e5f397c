package netlab

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// segment builds an IPv4 TCP segment from the client to the server, with
// seq and n bytes of data; checksums are left 0 (the pipe never reads them).
func segment(flags TCPFlags, seq uint32, n int) []byte {
	b := make([]byte, 20+20+n)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[8], b[9] = 64, protoTCP
	copy(b[12:16], ClientAddr().AsSlice())
	copy(b[16:20], ServerAddr().AsSlice())
	t := b[20:]
	binary.BigEndian.PutUint16(t[0:2], 40000)
	binary.BigEndian.PutUint16(t[2:4], 4000)
	binary.BigEndian.PutUint32(t[4:8], seq)
	t[12] = 5 << 4
	t[13] = byte(flags)
	return b
}

// sink records what a pipe writes: the seq of each segment and when.
type sink struct {
	mu    sync.Mutex
	seqs  []uint32
	times []time.Time
}

func (s *sink) write(b []byte) error {
	var p Packet
	parsePacket(b, &p)
	s.mu.Lock()
	s.seqs = append(s.seqs, p.Seq)
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	return nil
}

func (s *sink) got() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seqs)
}

// waitFor waits (generously) until the sink holds n packets.
func (s *sink) waitFor(t *testing.T, n int) []uint32 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := s.got(); len(got) >= n {
			return got
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("sink has %v, want %d packets", s.got(), n)
	return nil
}

type testPipe struct {
	*pipe
	sink   *sink
	events []Event
	mu     sync.Mutex
}

// newTestPipe runs a client→server pipe writing to a sink until the test
// ends.
func newTestPipe(t *testing.T, link Link) *testPipe {
	tp := &testPipe{sink: &sink{}}
	toServer := func(a netip.Addr) bool { return serverPrefix4.Masked().Contains(a) }
	tp.pipe = newPipe(ClientToServer, toServer, tp.sink.write, func(e Event) {
		tp.mu.Lock()
		tp.events = append(tp.events, e)
		tp.mu.Unlock()
	}, 1)
	tp.setLink(t, link)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { tp.run(done) })
	t.Cleanup(func() { close(done); wg.Wait() })
	return tp
}

func (tp *testPipe) setLink(t *testing.T, link Link) {
	t.Helper()
	if err := link.validate(); err != nil {
		t.Fatal(err)
	}
	c2s, _, _ := ruleStates(link.Rules)
	tp.set(link.ClientToServer, c2s, link.Seed)
}

func (tp *testPipe) send(b []byte) { tp.handle(b, time.Now()) }

func TestParsePacket(t *testing.T) {
	var p Packet
	if !parsePacket(segment(FlagPSH|FlagACK, 1234, 5), &p) {
		t.Fatal("segment not parsed")
	}
	want := Packet{Len: 45, Protocol: protoTCP, Src: netip.MustParseAddrPort("192.0.2.1:40000"),
		Dst: netip.MustParseAddrPort("198.51.100.1:4000"), Flags: FlagPSH | FlagACK, Seq: 1234, PayloadLen: 5}
	if p != want {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
	if s := p.String(); s != "TCP 192.0.2.1:40000 → 198.51.100.1:4000 [P.] seq=1234 ack=0 len=5" {
		t.Errorf("String: %q", s)
	}

	// IPv6: the same segment behind a 40-byte header.
	v6 := make([]byte, 40+20+3)
	v6[0] = 0x60
	binary.BigEndian.PutUint16(v6[4:6], 23)
	v6[6] = protoTCP
	copy(v6[8:24], ClientAddr6().AsSlice())
	copy(v6[24:40], ServerAddr6().AsSlice())
	v6[40+12] = 5 << 4
	v6[40+13] = byte(FlagSYN)
	if !parsePacket(v6, &p) || p.Dst.Addr() != ServerAddr6() || p.Flags != FlagSYN || p.PayloadLen != 3 {
		t.Errorf("IPv6: %+v", p)
	}

	for _, bad := range [][]byte{nil, {0x45}, make([]byte, 30), segment(FlagSYN, 0, 0)[:30]} {
		if parsePacket(bad, &p) {
			t.Errorf("parsed % x as %+v", bad, p)
		}
	}
}

func TestRuleDropNthOnce(t *testing.T) {
	tp := newTestPipe(t, Link{Rules: []Rule{DropNth(ClientToServer, MatchData, 3)}})
	tp.send(segment(FlagSYN, 0, 0)) // not data: not counted
	for seq := uint32(1); seq <= 5; seq++ {
		tp.send(segment(FlagACK|FlagPSH, seq, 100))
	}
	tp.send(segment(FlagACK|FlagPSH, 3, 100)) // the retransmission goes through
	got := tp.sink.waitFor(t, 6)
	if want := []uint32{0, 1, 2, 4, 5, 3}; !slices.Equal(got, want) {
		t.Errorf("forwarded seqs %v, want %v", got, want)
	}
	if c := tp.c.snapshot(); c.DroppedByRule != 1 || c.Received != 7 || c.Forwarded != 6 {
		t.Errorf("counters %+v", c)
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(tp.events) != 1 || tp.events[0].Packet.Seq != 3 || tp.events[0].Kind != Dropped || tp.events[0].Cause != ByRule {
		t.Fatalf("events %v", tp.events)
	}
	if r := tp.events[0].Reason(); r != "rule: drop the 3rd data segment client→server, once" {
		t.Errorf("reason %q", r)
	}
}

func TestRuleDropEverySYN(t *testing.T) {
	tp := newTestPipe(t, Link{Rules: []Rule{DropAll(0, MatchSYN)}})
	for range 4 {
		tp.send(segment(FlagSYN, 7, 0))
	}
	tp.send(segment(FlagSYN|FlagACK, 8, 0)) // a SYN+ACK is no SYN
	tp.send(segment(FlagACK, 9, 0))
	if got := tp.sink.waitFor(t, 2); !slices.Equal(got, []uint32{8, 9}) {
		t.Errorf("forwarded %v", got)
	}
	if c := tp.c.snapshot(); c.DroppedByRule != 4 {
		t.Errorf("dropped %d SYNs, want 4", c.DroppedByRule)
	}
}

func TestLossIsSeededAndBounded(t *testing.T) {
	run := func(loss float64, seed uint64) []uint32 {
		tp := newTestPipe(t, Link{ClientToServer: Impairment{Loss: loss}, Seed: seed})
		for seq := range uint32(1000) {
			tp.send(segment(FlagACK, seq, 10))
		}
		c := tp.c.snapshot()
		if c.Forwarded+c.DroppedByLoss != 1000 {
			t.Fatalf("loss %v: %+v", loss, c)
		}
		return tp.sink.waitFor(t, int(c.Forwarded))
	}
	if got := run(0, 5); len(got) != 1000 {
		t.Errorf("loss 0 forwarded %d of 1000", len(got))
	}
	if got := run(1, 5); len(got) != 0 {
		t.Errorf("loss 1 forwarded %d of 1000", len(got))
	}
	a, b, c := run(0.3, 42), run(0.3, 42), run(0.3, 43)
	if !slices.Equal(a, b) {
		t.Error("the same seed lost different packets")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds lost the same packets")
	}
	if n := len(a); n < 600 || n > 800 {
		t.Errorf("loss 0.3 forwarded %d of 1000", n)
	}
}

func TestDelayKeepsOrder(t *testing.T) {
	const delay = 30 * time.Millisecond
	tp := newTestPipe(t, Link{ClientToServer: Impairment{Delay: delay}})
	start := time.Now()
	for seq := uint32(1); seq <= 50; seq++ {
		tp.send(segment(FlagACK, seq, 10))
	}
	// Lowering the delay must not let the later packets overtake.
	tp.setLink(t, Link{})
	for seq := uint32(51); seq <= 100; seq++ {
		tp.send(segment(FlagACK, seq, 10))
	}
	got := tp.sink.waitFor(t, 100)
	for i, seq := range got {
		if seq != uint32(i+1) {
			t.Fatalf("order broken: %v", got)
		}
	}
	tp.sink.mu.Lock()
	first := tp.sink.times[0].Sub(start)
	tp.sink.mu.Unlock()
	if first < delay {
		t.Errorf("first packet left after %v, want ≥ %v", first, delay)
	}
	if c := tp.c.snapshot(); c.Delayed < 50 {
		t.Errorf("delayed %d, want ≥ 50", c.Delayed)
	}
}

func TestRateLimitQueue(t *testing.T) {
	// 100 kB/s with room for 10 packets of 1040 bytes: a burst of 30 keeps
	// the first ~10 and drops the rest, and the kept ones leave spaced by
	// about 10.4 ms.
	tp := newTestPipe(t, Link{ClientToServer: Impairment{Rate: 100_000, QueueBytes: 10 * 1040}})
	// One arrival time for the whole burst, so that a stall of this
	// goroutine on a busy machine cannot drain the queue midway.
	now := time.Now()
	for seq := range uint32(30) {
		tp.handle(segment(FlagACK, seq, 1000), now)
	}
	c := tp.c.snapshot()
	if c.DroppedByRate < 15 || c.DroppedByRate > 21 {
		t.Errorf("dropped %d of a 30-packet burst, want about 20", c.DroppedByRate)
	}
	kept := 30 - int(c.DroppedByRate)
	tp.sink.waitFor(t, kept)
	tp.sink.mu.Lock()
	spread := tp.sink.times[kept-1].Sub(tp.sink.times[0])
	tp.sink.mu.Unlock()
	if want := time.Duration(kept-1) * 10400 * time.Microsecond; spread < want*8/10 {
		t.Errorf("%d packets left within %v, want ≥ %v at 100 kB/s", kept, spread, want*8/10)
	}
}

func TestHoldBackReorders(t *testing.T) {
	hold := Rule{Direction: ClientToServer, Match: MatchData, Nth: 2, Count: 1, Action: HoldBack}
	tp := newTestPipe(t, Link{Rules: []Rule{hold}})
	for seq := uint32(1); seq <= 4; seq++ {
		tp.send(segment(FlagACK, seq, 10))
	}
	if got := tp.sink.waitFor(t, 4); !slices.Equal(got, []uint32{1, 3, 2, 4}) {
		t.Errorf("order %v, want [1 3 2 4]", got)
	}
	if c := tp.c.snapshot(); c.Reordered != 1 {
		t.Errorf("reordered %d", c.Reordered)
	}

	// A packet held back with nothing behind it still goes, after the
	// hold limit.
	tp2 := newTestPipe(t, Link{Rules: []Rule{{Match: MatchData, Action: HoldBack}}})
	start := time.Now()
	tp2.send(segment(FlagACK, 1, 10))
	tp2.sink.waitFor(t, 1)
	if d := time.Since(start); d < ReorderHoldLimit {
		t.Errorf("lone held packet left after %v", d)
	}
	if c := tp2.c.snapshot(); c.Reordered != 0 || c.Forwarded != 1 {
		t.Errorf("counters %+v", c)
	}
}

func TestDuplicate(t *testing.T) {
	tp := newTestPipe(t, Link{ClientToServer: Impairment{Duplicate: 1}})
	tp.send(segment(FlagACK, 1, 10))
	tp.send(segment(FlagACK, 2, 10))
	if got := tp.sink.waitFor(t, 4); !slices.Equal(got, []uint32{1, 1, 2, 2}) {
		t.Errorf("got %v", got)
	}
	if c := tp.c.snapshot(); c.Duplicated != 2 || c.Forwarded != 4 {
		t.Errorf("counters %+v", c)
	}
}

func TestIgnoresOtherDestinations(t *testing.T) {
	tp := newTestPipe(t, Link{})
	b := segment(FlagSYN, 1, 0)
	copy(b[16:20], []byte{127, 0, 0, 1})
	tp.send(b)
	tp.send([]byte{0x60, 1, 2})
	if c := tp.c.snapshot(); c.Ignored != 2 || c.Received != 0 || len(tp.sink.got()) != 0 {
		t.Errorf("counters %+v, forwarded %v", c, tp.sink.got())
	}
}

func TestValidate(t *testing.T) {
	for _, bad := range []Link{
		{ClientToServer: Impairment{Loss: 1.5}},
		{ServerToClient: Impairment{Delay: -1}},
		{Rules: []Rule{{Nth: -1}}},
		{Rules: []Rule{{Action: 9}}},
		{Rules: []Rule{{Direction: 4}}},
	} {
		if bad.validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestRuleString(t *testing.T) {
	for _, c := range []struct {
		r    Rule
		want string
	}{
		{DropNth(ClientToServer, MatchData, 3), "drop the 3rd data segment client→server, once"},
		{DropAll(ClientToServer, MatchSYN), "drop every SYN client→server"},
		{Rule{Match: MatchPureACK, Nth: 2, Count: 3, Action: Duplicate}, "duplicate 3 pure ACKs from the 2nd both directions"},
		{Rule{Name: "lose the reply", Direction: ServerToClient}, "lose the reply"},
		{Rule{Match: Match{Flags: FlagRST, Port: 80}, Nth: 11, Direction: ServerToClient}, "drop every segment (flags R, port 80) from the 11th on server→client"},
	} {
		r, want := c.r, c.want
		if got := r.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestEventsOnlyForWhatHappened(t *testing.T) {
	// The rule picks the packet for holding back, but random loss drops it:
	// one event, the drop.
	tp := newTestPipe(t, Link{
		ClientToServer: Impairment{Loss: 1},
		Rules:          []Rule{{Match: MatchData, Action: HoldBack}},
	})
	tp.send(segment(FlagACK, 1, 10))
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(tp.events) != 1 || tp.events[0].Kind != Dropped || tp.events[0].Cause != ByChance {
		t.Errorf("events %v, want one random drop", tp.events)
	}
}
