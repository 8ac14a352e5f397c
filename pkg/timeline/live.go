package timeline

import (
	"context"
	"sync"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
)

// Live joins a live capture and the programs' events into one timeline:
// the capture's segments and whatever Add is given go through a Merger, are
// linked to their connections, and reach emit in time order, from one
// goroutine.
type Live struct {
	merger *Merger
	reader *capture.Reader

	captureCtx, timelineCtx         context.Context
	stopCapture, stopTimeline       context.CancelFunc
	captureDone, timelineDone, fail chan struct{}
	failOnce                        sync.Once
	captureErr, timelineErr         error
}

// FrameFunc receives the raw frame behind each segment, as the capture read
// it (to write it to a file); the bytes are valid only during the call.
type FrameFunc func(data []byte, origLen int, t time.Time) error

// StartLive starts reading reader and merging. emit is called from the
// timeline's goroutine; an error from it stops the timeline. frames, if not
// nil, gets every segment's frame from the capture's goroutine. Stop must
// be called to end it. A nil reader gives a timeline of the programs'
// events alone (tests without the privileges a capture needs).
func StartLive(reader *capture.Reader, emit func(Event) error, frames FrameFunc) *Live {
	return StartLiveWindow(reader, DefaultReorderWindow, emit, frames)
}

// StartLiveWindow is StartLive with another reorder window.
func StartLiveWindow(reader *capture.Reader, window time.Duration, emit func(Event) error, frames FrameFunc) *Live {
	l := &Live{
		merger:       NewMerger(window, 4096),
		reader:       reader,
		captureDone:  make(chan struct{}),
		timelineDone: make(chan struct{}),
		fail:         make(chan struct{}),
	}
	// Each half has its own context: Stop ends the capture first, then
	// lets the timeline show what is still pending.
	l.captureCtx, l.stopCapture = context.WithCancel(context.Background())
	l.timelineCtx, l.stopTimeline = context.WithCancel(context.Background())
	go func() {
		defer close(l.captureDone)
		if reader == nil {
			return
		}
		for seg, err := range reader.Segments(l.captureCtx) {
			if err != nil {
				l.captureErr = err
				l.failed()
				return
			}
			if frames != nil {
				if err := frames(reader.Frame()); err != nil {
					l.captureErr = err
					l.failed()
					return
				}
			}
			l.merger.Add(l.captureCtx, WireEvent(seg))
		}
	}()
	go func() {
		defer close(l.timelineDone)
		linker := NewLinker()
		l.timelineErr = l.merger.Run(l.timelineCtx, func(e Event) error {
			linker.Link(&e)
			return emit(e)
		})
		if l.timelineErr != nil {
			l.failed()
			// Unblock a capture that waits to add to a merger no one reads.
			l.stopCapture()
		}
	}()
	return l
}

func (l *Live) failed() { l.failOnce.Do(func() { close(l.fail) }) }

// Add puts a program's event on the timeline. It is safe for concurrent
// use; it gives up when ctx is done or the timeline has stopped.
func (l *Live) Add(ctx context.Context, e Event) { l.merger.Add(ctx, e) }

// Failed is closed when the capture or the timeline stopped with an error;
// Stop returns the error.
func (l *Live) Failed() <-chan struct{} { return l.fail }

// Stop ends the capture, waits for it (and so for the handle to close),
// then flushes the timeline and waits for it. It returns the first error
// either had.
func (l *Live) Stop() error {
	l.stopCapture()
	<-l.captureDone
	l.stopTimeline()
	<-l.timelineDone
	if l.timelineErr != nil {
		return l.timelineErr
	}
	return l.captureErr
}

// Late counts events shown out of order (valid after Stop).
func (l *Live) Late() int { return l.merger.Late() }

// Stats are the capture's counters.
func (l *Live) Stats() capture.Stats {
	if l.reader == nil {
		return capture.Stats{}
	}
	return l.reader.Stats()
}
