package cli

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/capture/live"
	"github.com/tcp-playground/playground/pkg/netlab"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// screenQueue is how many events may wait for a slow terminal before the
// screen summarizes instead (timeline.AsyncView).
const screenQueue = 1 << 16

// liveSession is the one live pipeline of every live command (lessons,
// watch, serve): capture → privilege drop → output files → merger →
// screen. It satisfies lesson.Session.
type liveSession struct {
	reader *capture.Reader // nil in a session of the programs' events alone
	live   *timeline.Live
	screen *timeline.AsyncView
	files  pendingFiles

	link      *linkFeed   // a lab lesson's link events; nil otherwise
	cwnd      *cwndWatch  // a lab lesson's client's congestion window; nil otherwise
	kernel    *kernelLane // nil when the kernel lane is off
	kernelOff string      // why it is off, when it was asked for
	addCtx    context.Context
	stopAdds  context.CancelFunc

	mu        sync.Mutex
	observers []func(timeline.Event)
}

// sessionSpec says what a live session captures and where it goes.
type sessionSpec struct {
	iface, filter string
	title         string              // of the --html page
	screen        *timeline.AsyncView // where the events are shown; the session closes it
	// asRoot, if set, runs once the timeline runs and before root is
	// dropped: for what needs root, such as a port below 1024.
	asRoot func(*liveSession) error
	// kernel asks for the kernel lane: the sockets' states on these ports
	// (every port when empty), and with queues their queues too.
	kernel      bool
	kernelPorts []uint16
	queues      bool
	// noProcessLane leaves the process lane off where nothing would show
	// on it (a lesson's own programs are excluded from it): detaching its
	// syscall tracepoints costs about half a second at the end.
	noProcessLane bool
	// lab, if set, is a lab lesson's network: the capture opens on the
	// client namespace's end of its link (what the client sent, before
	// the link delays or drops it), and link's events join the timeline.
	lab  *netlab.Lab
	link *linkFeed
}

// openSession opens the capture, starts the timeline on the screen, drops
// root, then creates the output files as the learner. On failure
// everything it started is stopped, the screen too.
func openSession(env Env, out *outputFlags, spec sessionSpec) (*liveSession, error) {
	reserveProcs()
	var reader *capture.Reader
	var err error
	if spec.lab != nil {
		// The capture's socket belongs to the namespace of the thread
		// that makes it: the client's, whose tun0 shows each segment as
		// the client's kernel sent it, and everything that came back.
		err = spec.lab.InClient(func() (err error) {
			reader, err = live.Open(live.Options{Interface: netlab.TUNName, Filter: spec.filter})
			return err
		})
	} else {
		reader, err = live.Open(live.Options{Interface: spec.iface, Filter: spec.filter})
	}
	if err != nil {
		spec.screen.Close()
		return nil, liveError(err)
	}
	window := timeline.DefaultReorderWindow
	if spec.kernel {
		window = timeline.KernelReorderWindow
	}
	s := startSessionWindow(reader, window, spec.screen)
	s.link = spec.link
	fail := func(err error) (*liveSession, error) {
		s.Stop(env, false)
		return nil, err
	}
	if spec.asRoot != nil {
		if err := spec.asRoot(s); err != nil {
			return fail(err)
		}
	}
	if spec.kernel {
		// The BPF program is loaded as root; its ring buffer stays
		// readable after the drop. Where it can't load, one line says why
		// and the other lanes go on.
		lane, err := openKernelLane(spec.kernelPorts, !out.noProcess && !spec.noProcessLane)
		if err != nil {
			s.kernelOff = err.Error()
			fmt.Fprintf(env.Stderr, "kernel lane off (%v): the wire and the programs' lanes go on\n", err)
		} else {
			s.kernel = lane
			if lane.processOff != "" {
				fmt.Fprintln(env.Stderr, lane.processOff)
			}
		}
	}
	if _, err := dropPrivileges(); err != nil {
		return fail(err)
	}
	files, err := out.openFiles(reader.LinkType(), spec.title)
	if err != nil {
		return fail(err)
	}
	s.files.set(files)
	if s.kernel != nil {
		add := func(e timeline.Event) { s.live.Add(s.addCtx, e) }
		if spec.lab != nil {
			// The tracepoint sees every namespace's sockets: keep the
			// lab's, not a host program's that uses the same port.
			add = func(e timeline.Event) {
				if inLab(e.Kernel.Local) || inLab(e.Kernel.Remote) {
					s.live.Add(s.addCtx, e)
				}
			}
		}
		s.kernel.start(spec.kernelPorts, spec.queues, add)
		if spec.lab != nil && len(spec.kernelPorts) > 0 {
			if s.cwnd, err = startCwndWatch(spec.lab, spec.kernelPorts[0], add); err != nil {
				return fail(err)
			}
		}
	}
	if s.link != nil {
		s.link.start(s.live.Add)
	}
	return s, nil
}

// reserveProcs makes room for the readers that wait in system calls: the
// capture in libpcap's poll (in C), the kernel lane in epoll_wait. A
// goroutine blocked there keeps its P until the runtime's monitor takes it
// back, which it may do only 10-20 ms later; on a 2-core machine the two
// readers held both Ps, and the timeline's goroutine, runnable, waited that
// long: events reached the merger after its reorder window and showed as
// late (measured: 0-11 late events per lesson 1 run; with two more Ps, none
// in 8 runs).
func reserveProcs() {
	if n := runtime.NumCPU() + 2; runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
}

// startSession starts the timeline of reader's segments (none if nil) and
// the programs' events, shown on screen.
func startSession(reader *capture.Reader, screen *timeline.AsyncView) *liveSession {
	return startSessionWindow(reader, timeline.DefaultReorderWindow, screen)
}

func startSessionWindow(reader *capture.Reader, window time.Duration, screen *timeline.AsyncView) *liveSession {
	s := &liveSession{reader: reader, screen: screen}
	s.addCtx, s.stopAdds = context.WithCancel(context.Background())
	s.live = timeline.StartLiveWindow(reader, window, s.emit, s.files.Frame)
	return s
}

// emit runs on the timeline's goroutine: it must never wait for the
// terminal (the screen is an AsyncView).
func (s *liveSession) emit(e timeline.Event) error {
	s.mu.Lock()
	observers := s.observers
	s.mu.Unlock()
	for _, fn := range observers {
		fn(e)
	}
	if err := s.screen.Render(e); err != nil {
		return err
	}
	return s.files.Render(e)
}

// Add puts a program's event on the timeline.
func (s *liveSession) Add(ctx context.Context, e timeline.Event) { s.live.Add(ctx, e) }

// Observe makes fn see every event, in time order, as it is shown.
func (s *liveSession) Observe(fn func(timeline.Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observers = append(s.observers[:len(s.observers):len(s.observers)], fn)
}

// Failed is closed when the capture or the screen failed.
func (s *liveSession) Failed() <-chan struct{} { return s.live.Failed() }

// Unavailable says why events of a source can't be seen in this session
// ("" when they can): the kernel lane may be off.
func (s *liveSession) Unavailable(src timeline.Source) string {
	if src == timeline.SourceProcess {
		return s.processUnavailable()
	}
	if src == timeline.SourceKernel && s.kernel == nil {
		if s.kernelOff == "" {
			return "the kernel lane is off (--no-kernel)"
		}
		return s.kernelOff
	}
	return ""
}

// Stop ends the capture, then the timeline, the screen and the files; with
// report, it says what the capture counted and what the screen skipped.
func (s *liveSession) Stop(env Env, report bool) error {
	var lost, linkLost uint64
	if s.kernel != nil {
		lost = s.kernel.stop()
	}
	if s.cwnd != nil {
		s.cwnd.stop()
	}
	if s.link != nil {
		linkLost = s.link.stop()
	}
	s.stopAdds()
	err := errors.Join(s.live.Stop(), s.screen.Close(), s.files.Close())
	if !report {
		return err
	}
	if isTerminal(env.Stderr) {
		fmt.Fprintln(env.Stderr) // after the terminal's own "^C"
	}
	st := s.live.Stats()
	fmt.Fprintf(env.Stderr, "%d segments captured, %d dropped by the kernel", st.Segments, st.KernelDropped)
	if s.kernel != nil {
		fmt.Fprintf(env.Stderr, ", %d kernel events lost", lost)
		if s.kernel.calls != nil {
			fmt.Fprintf(env.Stderr, ", %d process calls lost", s.kernel.callsLost)
		}
	}
	if linkLost > 0 {
		fmt.Fprintf(env.Stderr, ", %d link events lost", linkLost)
	}
	if n := s.screen.Skipped(); n > 0 {
		fmt.Fprintf(env.Stderr, ", %d events not shown because the terminal was too slow", n)
	}
	fmt.Fprintln(env.Stderr)
	return err
}

// newScreen is the screen of watch and serve: the view the flags ask for,
// behind a queue so that a slow terminal can't stall the capture.
func newScreen(env Env, out *outputFlags) *timeline.AsyncView {
	return timeline.NewAsyncView(out.screen(env), screenQueue)
}
