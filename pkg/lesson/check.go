package lesson

import (
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tcp-playground/playground/pkg/timeline"
)

// quietPeriod is how long a step with expect-none directives watches for
// what must not happen, once everything it expects has been seen.
const quietPeriod = 300 * time.Millisecond

// checker matches the timeline's events against a step's expectations:
// ordered ones each after the previous one's match, "anytime" ones
// whenever, "none" ones must not match at all; min=N ones need N events.
// Order means time order: an event the timeline had to show late (the
// capture fell behind) still counts in its place.
type checker struct {
	mu      sync.Mutex
	expects []Expect
	events  []timeline.Event // this step's, in time order
	counts  []int            // events that matched each expectation
	since   time.Time
	done    chan struct{}
}

// start arms the checker for a step; the returned channel closes when all
// positive expectations are met.
func (c *checker) start(expects []Expect) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expects = expects
	c.events = c.events[:0]
	c.counts = make([]int, len(expects))
	c.since = time.Now()
	c.done = make(chan struct{})
	c.checkDone()
	return c.done
}

// waitsForSomething reports whether the step has positive expectations
// (so it must wait for them) and whether it has negative ones (so it must
// then watch a while longer).
func (c *checker) waitsForSomething() (positive, negative bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.expects {
		if x.None {
			negative = true
		} else {
			positive = true
		}
	}
	return positive, negative
}

// finish disarms the checker and says, per expectation, whether its event
// was seen (enough times).
func (c *checker) finish() []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make([]bool, len(c.expects))
	for i, x := range c.expects {
		seen[i] = c.counts[i] >= x.needed
	}
	c.expects, c.counts, c.events = nil, nil, c.events[:0]
	return seen
}

func (c *checker) observe(e timeline.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expects == nil || e.Time.Before(c.since) {
		return // no step running, or an event of an earlier step
	}
	if n := len(c.events); n == 0 || !e.Time.Before(c.events[n-1].Time) {
		c.events = append(c.events, e)
		c.apply(&c.events[len(c.events)-1])
	} else {
		// Late: put it in its place and match the step's events again.
		i := sort.Search(n, func(i int) bool { return c.events[i].Time.After(e.Time) })
		c.events = slices.Insert(c.events, i, e)
		clear(c.counts)
		for i := range c.events {
			c.apply(&c.events[i])
		}
	}
	c.checkDone()
}

// apply matches one event, taken in time order.
func (c *checker) apply(e *timeline.Event) {
	// Only the first ordered expectation not yet met may take the event.
	for i := range c.expects {
		x := &c.expects[i]
		if x.Anytime || x.None || c.counts[i] >= x.needed {
			continue
		}
		if x.Matches(e) {
			c.counts[i]++
		}
		break
	}
	for i := range c.expects {
		if x := &c.expects[i]; (x.Anytime || x.None) && x.Matches(e) {
			c.counts[i]++
		}
	}
}

// checkDone closes done once every positive expectation is met.
func (c *checker) checkDone() {
	for i, x := range c.expects {
		if !x.None && c.counts[i] < x.needed {
			return
		}
	}
	select {
	case <-c.done:
	default:
		close(c.done)
	}
}

// programDetail is a server or client event's detail and error text.
func programDetail(e *timeline.Event) string {
	var detail string
	var err error
	switch e.Source {
	case timeline.SourceServer:
		detail, err = e.Server.Detail, e.Server.Err
	case timeline.SourceClient:
		detail, err = e.Client.Detail, e.Client.Err
	}
	if err != nil {
		detail += " " + err.Error()
	}
	return detail
}

// ephemeral reports whether port is in the kernel's range for client ports.
func ephemeral(port uint16) bool {
	lo, hi := ephemeralRange()
	return int(port) >= lo && int(port) <= hi
}

// ephemeralRange is read once (Linux: /proc/sys/net/ipv4/ip_local_port_range,
// 32768-60999 by default).
var ephemeralRange = sync.OnceValues(func() (lo, hi int) {
	lo, hi = 32768, 60999
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if a, err := strconv.Atoi(f[0]); err == nil {
				lo = a
			}
			if b, err := strconv.Atoi(f[1]); err == nil {
				hi = b
			}
		}
	}
	return lo, hi
})
