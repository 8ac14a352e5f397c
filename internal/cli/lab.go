package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tcp-playground/playground/pkg/netlab"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// linkQueue is how many of the link's events may wait for the timeline: a
// lesson's link drops a few segments, never thousands.
const linkQueue = 1024

// linkFeed carries the lab link's events to the timeline. netlab calls
// emit from its forwarding goroutines, which must never wait: emit only
// queues, and a full queue is counted, not waited for.
type linkFeed struct {
	events chan timeline.Event
	lost   atomic.Uint64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLinkFeed() *linkFeed { return &linkFeed{events: make(chan timeline.Event, linkQueue)} }

// emit is the lab's Config.Emit.
func (f *linkFeed) emit(e netlab.Event) {
	select {
	case f.events <- timeline.LinkEventOf(linkEvent(e)):
	default:
		f.lost.Add(1)
	}
}

// start sends the queued events to add until stop.
func (f *linkFeed) start(add func(context.Context, timeline.Event)) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			select {
			case e := <-f.events:
				add(ctx, e)
			case <-ctx.Done():
				return
			}
		}
	}()
}

// stop ends the feed and waits for it; it says how many events the queue
// could not take.
func (f *linkFeed) stop() uint64 {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	return f.lost.Load()
}

// linkEvent is what the timeline shows of something the link did.
func linkEvent(e netlab.Event) timeline.LinkEvent {
	p := e.Packet
	return timeline.LinkEvent{Time: e.Time, What: strings.ReplaceAll(e.Kind.String(), " ", "-"), Reason: e.Reason(),
		ClientToServer: e.Direction == netlab.ClientToServer,
		Src:            p.Src, Dst: p.Dst, Flags: p.Flags.String(), Len: p.PayloadLen}
}

// openLab makes a lab lesson's network, as root, before the capture opens
// in it and root is dropped. Where it can't be made, the error says so in
// one line: these lessons have no point on another link.
func openLab(ctx context.Context, n int, feed *linkFeed) (*netlab.Lab, error) {
	lab, err := netlab.New(ctx, netlab.Config{Emit: feed.emit})
	switch {
	case errors.Is(err, netlab.ErrPermission):
		return nil, fmt.Errorf("lesson %d runs on a link it controls, between two network namespaces, which needs root: run it with sudo (%v)", n, err)
	case err != nil:
		return nil, fmt.Errorf("lesson %d runs on a link it controls, between two network namespaces, which this machine can't make (%v)", n, err)
	}
	return lab, nil
}

// labPrefixes hold every address of the lab (netlab's documentation ranges).
var labPrefixes = []netip.Prefix{
	netip.PrefixFrom(netlab.ClientAddr(), 24).Masked(),
	netip.PrefixFrom(netlab.ServerAddr(), 24).Masked(),
	netip.MustParsePrefix("2001:db8::/32"),
}

// inLab reports whether an address is one of the lab's.
func inLab(a netip.AddrPort) bool {
	for _, p := range labPrefixes {
		if a.IsValid() && p.Contains(a.Addr().Unmap()) {
			return true
		}
	}
	return false
}
