// Package timeline puts the wire's segments and the programs' own events on
// one clock and renders them: a log view for people, JSON lines for scripts.
// Renderers write to the io.Writer they are given and nowhere else.
package timeline

import (
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
)

// Source says where an event was observed.
type Source uint8

const (
	SourceWire Source = iota // the capture: what the kernels sent
)

func (s Source) String() string {
	switch s {
	case SourceWire:
		return "wire"
	}
	return "?"
}

// Event is one entry of the timeline.
type Event struct {
	Time    time.Time
	Source  Source
	Segment capture.Segment // when Source is SourceWire

	// Late is set by a Merger on an event that arrived after its reorder
	// window: it is shown out of time order.
	Late bool

	arrival uint64 // the Merger's arrival order, to keep ties stable
}

// WireEvent wraps a captured segment as a timeline event.
func WireEvent(s capture.Segment) Event {
	return Event{Time: s.Time, Source: SourceWire, Segment: s}
}

// Renderer writes events somewhere, one at a time, in the order given.
type Renderer interface {
	Render(Event) error
	// Flush writes out anything buffered.
	Flush() error
}
