package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/capture/live"
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
}

// openSession opens the capture, starts the timeline on the screen, drops
// root, then creates the output files as the learner. On failure
// everything it started is stopped, the screen too.
func openSession(env Env, out *outputFlags, spec sessionSpec) (*liveSession, error) {
	reader, err := live.Open(live.Options{Interface: spec.iface, Filter: spec.filter})
	if err != nil {
		spec.screen.Close()
		return nil, liveError(err)
	}
	s := startSession(reader, spec.screen)
	fail := func(err error) (*liveSession, error) {
		s.Stop(env, false)
		return nil, err
	}
	if spec.asRoot != nil {
		if err := spec.asRoot(s); err != nil {
			return fail(err)
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
	return s, nil
}

// startSession starts the timeline of reader's segments (none if nil) and
// the programs' events, shown on screen.
func startSession(reader *capture.Reader, screen *timeline.AsyncView) *liveSession {
	s := &liveSession{reader: reader, screen: screen}
	s.live = timeline.StartLive(reader, s.emit, s.files.Frame)
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

// Stop ends the capture, then the timeline, the screen and the files; with
// report, it says what the capture counted and what the screen skipped.
func (s *liveSession) Stop(env Env, report bool) error {
	err := errors.Join(s.live.Stop(), s.screen.Close(), s.files.Close())
	if !report {
		return err
	}
	st := s.live.Stats()
	fmt.Fprintf(env.Stderr, "%d segments captured, %d dropped by the kernel", st.Segments, st.KernelDropped)
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
