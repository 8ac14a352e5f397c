package timeline

import (
	"container/heap"
	"context"
	"time"
)

// DefaultReorderWindow is how long an event waits for older ones. The
// server learns of a connection ~0.5 ms before the capture delivers the
// handshake that made it (DESIGN.md, measured on loopback); a few
// milliseconds cover that with room for a busy machine, and stay well
// inside the 10 ms a learner would notice.
const DefaultReorderWindow = 5 * time.Millisecond

// KernelReorderWindow is the window when the kernel lane runs: its ring
// buffer delivers a state change within microseconds, while the capture's
// TPACKET_V3 blocks hold a packet up to ~2 ms and its reader may wait its
// turn on a 2-core machine. With 5 ms, 3 of 10 runs of lesson 1 --json
// showed some events late once the kernel lane ran; with 15 ms none of 10
// did. A learner does not notice 15 ms.
const KernelReorderWindow = 15 * time.Millisecond

// Merger orders events from several sources (the capture, the server, the
// client) by timestamp. An event is held for the reorder window after it
// happened, so that one observed earlier but delivered later still goes
// first. An event that arrives after the window has passed can't be put in
// its place any more: it is emitted at once, marked Late, and counted.
type Merger struct {
	window  time.Duration
	in      chan Event
	stopped chan struct{}    // closed when Run returns: Add no longer waits
	now     func() time.Time // the clock; tests replace it

	pending eventHeap
	arrived uint64 // arrival counter: equal times keep arrival order
	last    time.Time
	late    int
}

// NewMerger returns a merger with the given reorder window; buffer is the
// capacity of its input channel.
func NewMerger(window time.Duration, buffer int) *Merger {
	return &Merger{window: window, in: make(chan Event, buffer), stopped: make(chan struct{}), now: time.Now}
}

// Add queues an event; it is safe for concurrent use. It blocks only when
// the input buffer is full, which slows the producer rather than losing the
// event; then it gives up when ctx is done or Run has returned. An event
// that fits in the buffer is always queued, even with ctx done: a server
// closing on Ctrl-C still has its close events shown.
func (m *Merger) Add(ctx context.Context, e Event) {
	select {
	case m.in <- e:
		return
	default:
	}
	select {
	case m.in <- e:
	case <-ctx.Done():
	case <-m.stopped:
	}
}

// Late is how many events arrived after the window had passed (read it after
// Run returns).
func (m *Merger) Late() int { return m.late }

// Run emits events in time order until ctx is done, then flushes what is
// pending. emit's error stops the run and is returned.
func (m *Merger) Run(ctx context.Context, emit func(Event) error) error {
	defer close(m.stopped)
	tick := time.NewTicker(m.window / 2)
	defer tick.Stop()
	for {
		select {
		case e := <-m.in:
			if !m.last.IsZero() && e.Time.Before(m.last) {
				m.late++
				e.Late = true
				if err := emit(e); err != nil {
					return err
				}
				continue
			}
			m.push(e)
		case <-tick.C:
		case <-ctx.Done():
			for len(m.in) > 0 {
				m.push(<-m.in)
			}
			return m.release(time.Time{}, emit)
		}
		if err := m.release(m.now().Add(-m.window), emit); err != nil {
			return err
		}
	}
}

// release emits pending events up to the cutoff (all of them for a zero
// cutoff), oldest first.
func (m *Merger) release(cutoff time.Time, emit func(Event) error) error {
	for len(m.pending) > 0 {
		next := m.pending[0]
		if !cutoff.IsZero() && next.Time.After(cutoff) {
			return nil
		}
		heap.Pop(&m.pending)
		if next.Time.Before(m.last) {
			m.late++
			next.Late = true
		} else {
			m.last = next.Time
		}
		if err := emit(next); err != nil {
			return err
		}
	}
	return nil
}

func (m *Merger) push(e Event) {
	m.arrived++
	e.arrival = m.arrived
	heap.Push(&m.pending, e)
}

// eventHeap is a min-heap by time, then arrival.
type eventHeap []Event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].Time.Equal(h[j].Time) {
		return h[i].Time.Before(h[j].Time)
	}
	return h[i].arrival < h[j].arrival
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(Event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
