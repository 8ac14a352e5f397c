package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// screenQueue is how many events may wait for a slow terminal before the
// screen summarizes instead (timeline.AsyncView).
const screenQueue = 1 << 16

// liveSession is what watch and serve share: a live capture merged with the
// programs' events, on the screen (through a queue, so a slow terminal
// can't stall the capture) and in the files the flags ask for.
type liveSession struct {
	live   *timeline.Live
	screen *timeline.AsyncView
	files  pendingFiles
}

// startSession starts showing reader's segments, on the screen and in
// files (which may be nil, and opened later with openFiles).
func startSession(env Env, reader *capture.Reader, out *outputFlags, files *outputFiles) *liveSession {
	s := &liveSession{}
	s.files.set(files)
	view := out.screen(env)
	s.screen = timeline.NewAsyncView(view, screenQueue, timeline.SkipNote(view))
	s.live = timeline.StartLive(reader,
		func(e timeline.Event) error {
			if err := s.screen.Render(e); err != nil {
				return err
			}
			return s.files.Render(e)
		},
		s.files.Frame)
	return s
}

// openFiles creates the --html and --write files; call it after dropping
// root so that they belong to the learner.
func (s *liveSession) openFiles(out *outputFlags, reader *capture.Reader, title string) error {
	files, err := out.openFiles(reader.LinkType(), title)
	if err != nil {
		return err
	}
	s.files.set(files)
	return nil
}

// Add puts a program's event on the timeline.
func (s *liveSession) Add(ctx context.Context, e timeline.Event) { s.live.Add(ctx, e) }

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
