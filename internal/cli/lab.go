package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcp-playground/playground/pkg/kernel"
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

// cwndPoll is how often a lab lesson asks the client's kernel for its
// congestion window: a tenth of lesson 13's 100 ms round trip, so the
// window's growth in each round trip shows as one step.
const cwndPoll = 10 * time.Millisecond

// cwndWatch shows the congestion window of the lab's client sockets, from
// their tcp_info, whenever it or its phase changes. sock_diag answers for
// the namespace of the socket that asks, so each poll runs in the client's.
type cwndWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// cwndSeen is what was last shown of one socket.
type cwndSeen struct {
	cwnd, ssthresh, peak uint32
	phase                string
}

func startCwndWatch(lab *netlab.Lab, serverPort uint16, add func(timeline.Event)) (*cwndWatch, error) {
	// The sock_diag socket is opened once in the client's namespace and
	// asked from the watch's own goroutine: a poll then never waits for
	// the namespace's thread, the suspect when polls made through it once
	// reported nothing during a whole 120 ms recovery.
	var diag *kernel.Diag
	if err := lab.InClient(func() (err error) {
		diag, err = kernel.OpenDiag()
		return err
	}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &cwndWatch{cancel: cancel}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer diag.Close()
		ticker := time.NewTicker(cwndPoll)
		defer ticker.Stop()
		shown := map[uint64]cwndSeen{}
		filter := kernel.Filter{Ports: []uint16{serverPort}}
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			sockets, err := diag.Sockets(filter)
			if err != nil {
				continue // one failed dump: the next poll tries again
			}
			now := time.Now()
			current := map[uint64]cwndSeen{}
			for _, s := range sockets {
				if s.Info == nil || s.Remote.Port() != serverPort || s.Info.SndCwnd == 0 {
					continue // the server's sockets, the listener, TIME_WAIT
				}
				before, known := shown[s.Cookie]
				seen := cwndSeen{cwnd: s.Info.SndCwnd, phase: cwndPhase(s.Info), peak: max(before.peak, s.Info.SndCwnd)}
				if s.Info.SndSsthresh < kernel.InfiniteSsthresh {
					seen.ssthresh = s.Info.SndSsthresh
				}
				current[s.Cookie] = seen
				if known && !cwndNews(before, seen) {
					seen.cwnd = before.cwnd // growth is measured from what was shown
					current[s.Cookie] = seen
					continue
				}
				add(timeline.KernelEventOf(timeline.KernelEvent{Time: now, Kind: timeline.KernelCwnd, Side: timeline.SideClient,
					Local: unmap(s.Local), Remote: unmap(s.Remote), Cwnd: seen.cwnd, Ssthresh: seen.ssthresh,
					InFlight: s.Info.Unacked, Peak: seen.peak, Phase: seen.phase, RTT: s.Info.RTT}))
			}
			shown = current
		}
	}()
	return w, nil
}

// cwndNews reports whether a socket's window changed enough to show: a new
// phase or threshold, any cut, or growth by a quarter since last shown. In
// slow start the window grows with every ACK; shown at every poll it
// would be a wall of lines, shown by quarters it doubles in about three.
func cwndNews(before, now cwndSeen) bool {
	return now.phase != before.phase || now.ssthresh != before.ssthresh ||
		now.cwnd < before.cwnd || now.cwnd >= before.cwnd+max(before.cwnd/4, 1)
}

func (w *cwndWatch) stop() {
	w.cancel()
	w.wg.Wait()
}

// cwndPhase names where a sender's congestion control stands.
func cwndPhase(info *kernel.TCPInfo) string {
	switch info.CAState {
	case kernel.CADisorder:
		return timeline.PhaseDisorder
	case kernel.CACWR:
		return timeline.PhaseReduce
	case kernel.CARecovery:
		return timeline.PhaseRecovery
	case kernel.CALoss:
		return timeline.PhaseLoss
	}
	if info.SndCwnd < info.SndSsthresh {
		return timeline.PhaseSlowStart
	}
	return timeline.PhaseAvoidance
}
