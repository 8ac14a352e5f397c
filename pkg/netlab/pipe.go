package netlab

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// maxQueuedPackets bounds a direction's queue whatever its impairment:
// a long delay on a fast sender must not eat the learner's memory. A packet
// over it is dropped and counted as DroppedByRate (a full queue).
const maxQueuedPackets = 1 << 16

// pipe is one direction of the link: the reader of one side's TUN calls
// handle for each packet, and run, in its own goroutine, writes the packets
// that waited to the other side when their time comes. It knows nothing
// about TUN devices, so it can be tested with any write function.
type pipe struct {
	dir Direction
	// forOtherSide reports whether a destination address belongs to the
	// other side; anything else is ignored, never forwarded.
	forOtherSide func(netip.Addr) bool
	write        func([]byte) error
	emit         func(Event)
	wake         chan struct{} // handle → run: the queue's head changed

	c counters

	mu          sync.Mutex // guards what follows, and orders writes
	im          Impairment
	rules       []ruleState
	rng         *rand.Rand
	busyUntil   time.Time // when the rate limit's "wire" is free again
	lastRelease time.Time // release time of the newest queued packet: order is kept
	queue       []*queued // waiting packets, by release time
	held        *queued   // a packet held back for reordering (the queue's last), or nil
}

type queued struct {
	release time.Time
	data    []byte
}

type counters struct {
	received, forwarded, bytes                atomic.Uint64
	droppedByRule, droppedByLoss, droppedRate atomic.Uint64
	delayed, duplicated, reordered, ignored   atomic.Uint64
}

func (c *counters) snapshot() Counters {
	return Counters{
		Received:      c.received.Load(),
		Forwarded:     c.forwarded.Load(),
		Bytes:         c.bytes.Load(),
		DroppedByRule: c.droppedByRule.Load(),
		DroppedByLoss: c.droppedByLoss.Load(),
		DroppedByRate: c.droppedRate.Load(),
		Delayed:       c.delayed.Load(),
		Duplicated:    c.duplicated.Load(),
		Reordered:     c.reordered.Load(),
		Ignored:       c.ignored.Load(),
	}
}

// ruleState is one rule as one direction sees it: its own count of
// matching segments, and the hit counter shared by both directions.
type ruleState struct {
	rule  Rule
	index int
	name  string
	seen  int
	hits  *atomic.Uint64
}

func newPipe(dir Direction, forOtherSide func(netip.Addr) bool, write func([]byte) error, emit func(Event), seed uint64) *pipe {
	if emit == nil {
		emit = func(Event) {}
	}
	return &pipe{
		dir:          dir,
		forOtherSide: forOtherSide,
		write:        write,
		emit:         emit,
		wake:         make(chan struct{}, 1),
		rng:          rand.New(rand.NewPCG(seed, uint64(dir))),
	}
}

// set installs a new impairment and rules; packets already waiting keep
// the release time they were given.
func (p *pipe) set(im Impairment, rules []ruleState, seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.im = im
	p.rules = rules
	if seed != 0 {
		p.rng = rand.New(rand.NewPCG(seed, uint64(p.dir)))
	}
}

// handle takes one packet read at time now. b is not kept: the caller may
// reuse it as soon as handle returns.
func (p *pipe) handle(b []byte, now time.Time) {
	var pkt Packet
	if !parsePacket(b, &pkt) || !p.forOtherSide(pkt.Dst.Addr()) {
		p.c.ignored.Add(1)
		return
	}
	p.c.received.Add(1)
	// Events go out after the lock is released, so a slow emit never holds
	// up the sender goroutine.
	var events []Event
	p.mu.Lock()
	events = p.decide(b, &pkt, now, events)
	p.mu.Unlock()
	for _, e := range events {
		p.emit(e)
	}
}

// decide applies the rules and impairments to one packet and queues it (or
// not); it returns events with the ones it made appended: a drop, or what
// was done to a packet that went on (a duplicate, a hold-back), never both.
// p.mu is held.
func (p *pipe) decide(b []byte, pkt *Packet, now time.Time, events []Event) []Event {
	event := func(k EventKind, c Cause) Event {
		return Event{Time: now, Direction: p.dir, Kind: k, Cause: c, Rule: -1, Packet: *pkt}
	}
	var duplicate, holdBack *Event
	for i := range p.rules {
		rs := &p.rules[i]
		if !rs.rule.Match.matches(pkt) {
			continue
		}
		rs.seen++
		first := max(rs.rule.Nth, 1)
		if rs.seen < first || (rs.rule.Count > 0 && rs.seen >= first+rs.rule.Count) {
			continue
		}
		rs.hits.Add(1)
		e := event(Dropped, ByRule)
		e.Rule, e.RuleName = rs.index, rs.name
		switch rs.rule.Action {
		case Drop:
			p.c.droppedByRule.Add(1)
			return append(events, e)
		case Duplicate:
			e.Kind = Duplicated
			duplicate = &e
		case HoldBack:
			e.Kind = HeldBack
			holdBack = &e
		}
	}
	im := &p.im
	if im.Loss > 0 && p.rng.Float64() < im.Loss {
		p.c.droppedByLoss.Add(1)
		return append(events, event(Dropped, ByChance))
	}
	if duplicate == nil && im.Duplicate > 0 && p.rng.Float64() < im.Duplicate {
		e := event(Duplicated, ByChance)
		duplicate = &e
	}
	if holdBack == nil && im.Reorder > 0 && p.rng.Float64() < im.Reorder {
		e := event(HeldBack, ByChance)
		holdBack = &e
	}
	if len(p.queue) >= maxQueuedPackets {
		p.c.droppedRate.Add(1)
		return append(events, event(Dropped, ByRate))
	}

	depart := now
	if im.Rate > 0 {
		// A wire of Rate bytes/s: the packet starts when the previous one
		// is done and takes len/Rate. What is still to be sent before it
		// is the queue.
		start := now
		if p.busyUntil.After(now) {
			start = p.busyUntil
		}
		limit := int64(im.QueueBytes)
		if limit == 0 {
			limit = DefaultQueueBytes
		}
		backlog := int64(start.Sub(now).Seconds() * float64(im.Rate))
		if backlog+int64(len(b)) > limit {
			p.c.droppedRate.Add(1)
			return append(events, event(Dropped, ByRate))
		}
		p.busyUntil = start.Add(time.Duration(int64(len(b)) * int64(time.Second) / im.Rate))
		depart = p.busyUntil
	}
	release := depart.Add(im.Delay)
	if release.Before(p.lastRelease) {
		release = p.lastRelease
	}
	p.lastRelease = release
	if release.After(now) {
		p.c.delayed.Add(1)
	}
	if p.held != nil {
		// Only one packet is held back at a time: this one goes by it.
		holdBack = nil
	}
	p.enqueue(b, release, now, holdBack != nil)
	if holdBack != nil {
		events = append(events, *holdBack)
	}
	if duplicate != nil {
		p.c.duplicated.Add(1)
		p.enqueue(b, release, now, false)
		events = append(events, *duplicate)
	}
	return events
}

// enqueue queues b (a copy) for release, or writes it at once when nothing
// waits and its time has come. p.mu is held.
func (p *pipe) enqueue(b []byte, release, now time.Time, holdBack bool) {
	if h := p.held; h != nil && release.Before(h.release) {
		// The packet held back lets this one by, and follows it.
		p.queue = append(p.queue, nil)
		copy(p.queue[len(p.queue)-1:], p.queue[len(p.queue)-2:])
		p.queue[len(p.queue)-2] = &queued{release: release, data: clone(b)}
		h.release = release
		p.held = nil
		p.c.reordered.Add(1)
		p.signal()
		return
	}
	if holdBack {
		q := &queued{release: release.Add(ReorderHoldLimit), data: clone(b)}
		p.held = q
		p.queue = append(p.queue, q)
		p.signal()
		return
	}
	if len(p.queue) == 0 && !release.After(now) {
		p.send(b)
		return
	}
	p.queue = append(p.queue, &queued{release: release, data: clone(b)})
	if len(p.queue) == 1 {
		p.signal()
	}
}

func (p *pipe) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// send writes one packet to the other side. p.mu is held, so packets leave
// in queue order whichever goroutine sends them.
func (p *pipe) send(b []byte) {
	// A failed write (the other side is closing, its queue is full) is a
	// loss the kernel's TCP will repair like any other.
	if p.write(b) == nil {
		p.c.forwarded.Add(1)
		p.c.bytes.Add(uint64(len(b)))
	}
}

// run sends queued packets when their time comes, until done is closed.
func (p *pipe) run(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		p.mu.Lock()
		now := time.Now()
		for len(p.queue) > 0 && !p.queue[0].release.After(now) {
			q := p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
			if q == p.held {
				p.held = nil // its hold limit passed with no packet to let by
			}
			p.send(q.data)
		}
		wait := time.Duration(-1)
		if len(p.queue) > 0 {
			wait = p.queue[0].release.Sub(now)
		} else {
			p.queue = nil // let go of the array the reslicing walked along
		}
		p.mu.Unlock()
		if wait < 0 {
			select {
			case <-p.wake:
			case <-done:
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-p.wake:
			timer.Stop()
		case <-done:
			return
		}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
