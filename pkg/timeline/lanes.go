package timeline

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tcp-playground/playground/pkg/client"
	"github.com/tcp-playground/playground/pkg/server"
)

// Side is the end of a connection an event belongs to: the client (the
// side that sent the SYN) or the server.
type Side uint8

const (
	SideUnknown Side = iota
	SideClient
	SideServer
)

func (s Side) String() string {
	return [...]string{SideUnknown: "", SideClient: "client", SideServer: "server"}[s]
}

// lane is what every source other than the wire reports, in its own terms:
// the server's code, the client's code, the kernel's sockets, any
// program's socket calls. Each source implements it once (below,
// kernel.go and process.go); the views and the JSON shape
// ask it instead of switching on the source, so a new source is one new
// implementation and one case in Event.lane.
type lane interface {
	kind() string
	endpoints() (local, remote netip.AddrPort)
	payload() []byte
	side() Side
	glyph() string // the marker before its kind: "● ", "○ ", "◇ "
	style(s *Styles) style
	// summary says what it saw, in the terms of the code or kernel that
	// saw it: "connection from 127.0.0.1:53782", "5 bytes". payloadLen is
	// the event's (a preview may be shorter). The methods take no *Event,
	// so that an event a view renders does not escape to the heap.
	summary(payloadLen int) string
	// short is summary made short enough for a ladder marker, without
	// repeating the kind.
	short(payloadLen int) string
	// note explains it for a learner.
	note(payloadLen int) string
	// fill sets its own fields of the JSON shape.
	fill(j *JSONProgramEvent)
}

// lane is the event's source, as a lane; nil for the wire.
func (e *Event) lane() lane {
	switch e.Source {
	case SourceServer:
		return serverLane{e.Server}
	case SourceClient:
		return clientLane{e.Client}
	case SourceKernel:
		return kernelLane{e.Kernel}
	case SourceLink:
		return linkLane{e.Link}
	case SourceProcess:
		return processLane{e.Process}
	}
	return nil
}

// Side is the end of the connection the event belongs to.
func (e *Event) Side() Side {
	if e.Source == SourceWire {
		if e.Segment.FromClient {
			return SideClient
		}
		return SideServer
	}
	return e.lane().side()
}

// ProgramSummary is what a server, client or kernel event says, in the
// terms of what saw it: "connection from 127.0.0.1:53782 (IPv4)", "5 bytes".
func ProgramSummary(e *Event) string {
	if l := e.lane(); l != nil {
		return l.summary(e.PayloadLen())
	}
	return ""
}

// ProgramNote explains a server, client or kernel event for a learner.
func ProgramNote(e *Event) string {
	if l := e.lane(); l != nil {
		return l.note(e.PayloadLen())
	}
	return ""
}

// serverLane is the lesson's server code.
type serverLane struct{ ev *server.Event }

func (l serverLane) kind() string                              { return l.ev.Kind.String() }
func (l serverLane) endpoints() (local, remote netip.AddrPort) { return l.ev.Local, l.ev.Remote }
func (l serverLane) payload() []byte                           { return l.ev.Data }
func (l serverLane) side() Side                                { return SideServer }
func (l serverLane) glyph() string                             { return "● " }
func (l serverLane) style(s *Styles) style                     { return s.server }

func (l serverLane) summary(payloadLen int) string {
	ev := l.ev
	switch ev.Kind {
	case server.Listening:
		return "listening on " + ev.Local.String()
	case server.Connection:
		// The socket info the notes log, by Node's names.
		return fmt.Sprintf("connection from %s · remoteAddress %s remotePort %d remoteFamily %s · address() %s",
			ev.Remote, ev.NodeRemoteAddress, ev.Remote.Port(), ev.Family, ev.Local)
	case server.Data, server.Write:
		return Plural(payloadLen, "byte") + errSuffix(ev.Err)
	case server.Close:
		if ev.Detail != "" {
			return ev.Detail + errSuffix(ev.Err)
		}
		return "closed" + errSuffix(ev.Err)
	case server.Error:
		return ev.Detail + errSuffix(ev.Err)
	}
	return ""
}

func (l serverLane) short(payloadLen int) string {
	switch l.ev.Kind {
	case server.Listening:
		return "on " + l.ev.Local.String()
	case server.Connection:
		return "from " + l.ev.Remote.String()
	}
	return l.summary(payloadLen)
}

func (l serverLane) note(payloadLen int) string {
	switch l.ev.Kind {
	case server.Listening:
		return "the kernel now answers connections to port " + strconv.Itoa(int(l.ev.Local.Port())) + "; nothing is sent"
	case server.Connection:
		return "your code sees it only now: the kernel already did the handshake"
	case server.Data:
		return "one read returned these bytes"
	case server.Write:
		return writeNote("your code", payloadLen, l.ev.Err)
	case server.Close:
		if l.ev.Conn == 0 {
			return "the server stops listening"
		}
		return "the socket's close event"
	}
	return ""
}

func (l serverLane) fill(j *JSONProgramEvent) {
	j.Conn, j.RemoteNode, j.Family, j.Detail = l.ev.Conn, l.ev.NodeRemoteAddress, l.ev.Family, l.ev.Detail
	if l.ev.Err != nil {
		j.Error = l.ev.Err.Error()
	}
}

// clientLane is the lesson's client code.
type clientLane struct{ ev *client.Event }

func (l clientLane) kind() string                              { return l.ev.Kind.String() }
func (l clientLane) endpoints() (local, remote netip.AddrPort) { return l.ev.Local, l.ev.Remote }
func (l clientLane) payload() []byte                           { return l.ev.Data }
func (l clientLane) side() Side                                { return SideClient }
func (l clientLane) glyph() string                             { return "○ " }
func (l clientLane) style(s *Styles) style                     { return s.client }

func (l clientLane) summary(payloadLen int) string {
	ev := l.ev
	switch ev.Kind {
	case client.Dialing:
		return "connect to " + ev.Remote.String()
	case client.Connected:
		return "connected from " + ev.Local.String()
	case client.Write, client.Read:
		if errors.Is(ev.Err, io.EOF) {
			return "end of stream (the server sent FIN)"
		}
		return Plural(payloadLen, "byte") + errSuffix(ev.Err)
	case client.HalfClose, client.Close, client.Abort, client.Error:
		return ev.Detail + errSuffix(ev.Err)
	}
	return ""
}

func (l clientLane) short(payloadLen int) string {
	switch l.ev.Kind {
	case client.Dialing:
		return "to " + l.ev.Remote.String()
	case client.Connected:
		return "from " + l.ev.Local.String()
	}
	return l.summary(payloadLen)
}

func (l clientLane) note(payloadLen int) string {
	switch l.ev.Kind {
	case client.Dialing:
		return "connect(): the client's kernel sends SYN"
	case client.Connected:
		return "connect() returned: the handshake is done"
	case client.Write:
		return writeNote("the client", payloadLen, l.ev.Err)
	case client.Read:
		return "one read returned"
	case client.HalfClose:
		return "CloseWrite(): FIN, but the client still reads"
	case client.Close:
		// The client looked at its socket before closing it: say what
		// really went on the wire.
		switch {
		case strings.HasSuffix(l.ev.Detail, client.OutcomeNothingFINSent):
			return "Close(): its FIN already went out with CloseWrite, so nothing more is sent"
		case strings.HasSuffix(l.ev.Detail, client.OutcomeNothingReset):
			return "Close(): the connection was already reset, so nothing is sent"
		case strings.HasSuffix(l.ev.Detail, client.OutcomeRST):
			return "Close() with unread bytes waiting: the kernel sends RST, not FIN"
		}
		return "Close(): the client's kernel sends FIN"
	case client.Abort:
		return "SetLinger(0) then Close(): the kernel sends RST"
	}
	return ""
}

func (l clientLane) fill(j *JSONProgramEvent) {
	j.Detail = l.ev.Detail
	if l.ev.Err != nil {
		j.Error = l.ev.Err.Error()
	}
}

// writeNote says what a write call did, from its result: n is what the
// call reports as written.
func writeNote(who string, n int, err error) string {
	switch {
	case err == nil:
		return who + " handed the bytes to the kernel"
	case n > 0:
		return "the kernel took " + Plural(n, "byte") + ", then the write failed"
	}
	return "the write failed: the kernel took none of these bytes"
}

func errSuffix(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return ""
	}
	return ": " + err.Error()
}

// addrString is "" for an unset address, so JSON can omit it.
func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
