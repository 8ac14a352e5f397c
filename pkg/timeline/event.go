// Package timeline puts the three places TCP lives on one clock: the wire's
// segments (package capture), the kernel's sockets (their states and
// queues) and the programs' own events (packages server and client). A
// Merger orders them by timestamp within a reorder window, a Linker ties
// each to its connection and side, and views render them: the log view and
// the ladder for people (fitted to a terminal's width), JSON lines for
// scripts, a self-contained HTML sequence diagram. AsyncView keeps a slow
// terminal from stalling the capture. The learner's words for each event
// live here too (notes.go for segments, lanes.go and kernel.go for the
// other sources). Renderers write to the io.Writer they are given and
// nowhere else.
package timeline

import (
	"net/netip"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/client"
	"github.com/tcp-playground/playground/pkg/server"
)

// Source says where an event was observed.
type Source uint8

const (
	SourceWire    Source = iota // the capture: what the kernels sent
	SourceServer                // the server's own code
	SourceClient                // the client's own code
	SourceKernel                // the kernel's sockets: states and queues
	SourceProcess               // any program's socket calls, seen by the kernel
	SourceLink                  // the lesson's link: what it did to a packet (netlab)
)

func (s Source) String() string {
	switch s {
	case SourceWire:
		return "wire"
	case SourceServer:
		return "server"
	case SourceClient:
		return "client"
	case SourceKernel:
		return "kernel"
	case SourceLink:
		return "link"
	case SourceProcess:
		return "process"
	}
	return "?"
}

// Event is one entry of the timeline: a captured segment, or an event of
// the server's or the client's code.
type Event struct {
	Time    time.Time
	Source  Source
	Segment capture.Segment // when Source is SourceWire
	Server  *server.Event   // when Source is SourceServer
	Client  *client.Event   // when Source is SourceClient
	Kernel  *KernelEvent    // when Source is SourceKernel
	Link    *LinkEvent      // when Source is SourceLink
	Process *ProcessEvent   // when Source is SourceProcess

	// Stream is the connection index (tshark's tcp.stream) the event belongs
	// to, or -1 when not known; a Linker sets it for server and client events.
	Stream int64

	// Late is set by a Merger on an event that arrived after its reorder
	// window: it is shown out of time order.
	Late bool

	arrival uint64        // the Merger's arrival order, to keep ties stable
	barrier chan struct{} // AsyncView.Drain's marker: not an event at all
	fullLen int           // a program event's payload length when Data was cut to a preview
}

// WireEvent wraps a captured segment as a timeline event.
func WireEvent(s capture.Segment) Event {
	stream := int64(s.Stream)
	if s.Stream == capture.NoStream {
		stream = -1 // a segment whose header the snap length cut, on no known connection
	}
	return Event{Time: s.Time, Source: SourceWire, Segment: s, Stream: stream}
}

// ServerEvent wraps an event of the server's code.
func ServerEvent(e server.Event) Event {
	return Event{Time: e.Time, Source: SourceServer, Server: &e, Stream: -1}
}

// ClientEvent wraps an event of the client's code.
func ClientEvent(e client.Event) Event {
	return Event{Time: e.Time, Source: SourceClient, Client: &e, Stream: -1}
}

// Kind is the event's kind as its source names it: SYN, DATA... for the
// wire, connection, data... for the server, dial, connected... for the client.
func (e *Event) Kind() string {
	if l := e.lane(); l != nil {
		return l.kind()
	}
	return e.Segment.Kind.String()
}

// Endpoints are the event's local and remote addresses (for the wire:
// source and destination).
func (e *Event) Endpoints() (local, remote netip.AddrPort) {
	if l := e.lane(); l != nil {
		return l.endpoints()
	}
	return e.Segment.Src, e.Segment.Dst
}

// Payload is the bytes an event carries: a segment's preview, or what a
// program read or wrote.
func (e *Event) Payload() []byte {
	if l := e.lane(); l != nil {
		return l.payload()
	}
	return e.Segment.Preview()
}

// PayloadLen is the full length of what the event carried.
func (e *Event) PayloadLen() int {
	switch {
	case e.Source == SourceWire:
		return e.Segment.Len
	case e.Source == SourceLink:
		return e.Link.Len
	case e.Source == SourceProcess:
		return e.Process.Len
	case e.fullLen > 0:
		return e.fullLen
	}
	return len(e.Payload())
}

// previewOnly returns the event with a program's Data cut to max bytes (a
// copy; the length it had is kept), for views that keep events a long time.
func (e Event) previewOnly(max int) Event {
	if len(e.Payload()) <= max {
		return e
	}
	e.fullLen = len(e.Payload())
	switch e.Source {
	case SourceServer:
		s := *e.Server
		s.Data = append([]byte(nil), s.Data[:max]...)
		e.Server = &s
	case SourceClient:
		c := *e.Client
		c.Data = append([]byte(nil), c.Data[:max]...)
		e.Client = &c
	}
	return e
}

// Linker ties the programs' and the kernel's events to the connection the
// wire shows them on, by their 4-tuple, and tells a kernel or process
// event's side (client or server) from which end of that connection it is. Feed it
// every event in timeline order.
type Linker struct {
	streams map[[2]netip.AddrPort]link
}

// link is what the Linker knows of a connection seen on the wire.
type link struct {
	stream int64
	client netip.AddrPort // the side that sent the SYN
}

// NewLinker returns an empty linker.
func NewLinker() *Linker { return &Linker{streams: make(map[[2]netip.AddrPort]link)} }

// linkerMax bounds the Linker's memory in a long watch: past it, the
// oldest links are forgotten all at once (a program event of a connection
// that old shows without its stream number).
const linkerMax = 1 << 16

// Link records a wire event's connection, or sets another event's Stream
// (and a kernel or process event's Side).
func (l *Linker) Link(e *Event) {
	local, remote := e.Endpoints()
	if e.Source == SourceWire {
		if len(l.streams) >= linkerMax {
			clear(l.streams)
		}
		c := e.Segment.Src
		if !e.Segment.FromClient {
			c = e.Segment.Dst
		}
		l.streams[[2]netip.AddrPort{local, remote}] = link{e.Stream, c}
		return
	}
	known, ok := l.streams[[2]netip.AddrPort{local, remote}]
	if !ok {
		known, ok = l.streams[[2]netip.AddrPort{remote, local}]
	}
	if ok && local.IsValid() && remote.IsValid() {
		e.Stream = known.stream
	}
	if k := e.Kernel; k != nil && k.Side == SideUnknown {
		switch {
		case ok && local.IsValid():
			k.Side = SideServer
			if local == known.client {
				k.Side = SideClient
			}
		case k.Old == "SYN_SENT" || k.New == "SYN_SENT":
			k.Side = SideClient // only a client sends a SYN first
		case k.Old == "LISTEN" || k.New == "LISTEN" || k.Old == "SYN_RECV" || k.New == "SYN_RECV" || k.Listener:
			k.Side = SideServer // a listener, or a connection it is answering
		}
	}
	if p := e.Process; p != nil && p.Side == SideUnknown {
		switch {
		case ok && local.IsValid():
			p.Side = SideServer
			if local == known.client {
				p.Side = SideClient
			}
		case p.Kind == ProcessAccept:
			p.Side = SideServer
		case p.Kind == ProcessConnect:
			p.Side = SideClient
		}
	}
}

// Renderer writes events somewhere, one at a time, in the order given.
type Renderer interface {
	Render(Event) error
	// Flush writes out anything buffered.
	Flush() error
}
