package timeline

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ProcessKind is the socket call a process event reports.
type ProcessKind uint8

const (
	ProcessAccept   ProcessKind = iota // accept() returned a new connection
	ProcessConnect                     // connect() started the handshake
	ProcessRead                        // a read returned bytes, or 0 at the end of the stream
	ProcessWrite                       // a write handed bytes to the kernel
	ProcessShutdown                    // shutdown()
	ProcessClose                       // the socket's last descriptor was closed
)

func (k ProcessKind) String() string {
	return [...]string{"accept", "connect", "read", "write", "shutdown", "close"}[k]
}

// ProcessEvent is a socket call of any process on a watched port, as the
// kernel's TCP code saw it (package kernel's Calls): the learner's own
// program, unchanged. Addresses are unmapped, as on the wire.
type ProcessEvent struct {
	Time          time.Time
	Kind          ProcessKind
	Side          Side // the Linker sets it from the wire when it can
	PID           uint32
	Comm          string
	Local, Remote netip.AddrPort
	Len           int    // read, write: the bytes the call moved
	Preview       []byte // read, write: the first of them, where the buffer was readable
	How           string // shutdown: SHUT_RD, SHUT_WR or SHUT_RDWR
	Err           string // connect: its error, when it failed at once
}

// ProcessEventOf wraps a process's socket call for the timeline.
func ProcessEventOf(p ProcessEvent) Event {
	return Event{Time: p.Time, Source: SourceProcess, Process: &p, Stream: -1}
}

// Label names the process as its lane does: "node[4242]".
func (p *ProcessEvent) Label() string {
	return p.Comm + "[" + strconv.FormatUint(uint64(p.PID), 10) + "]"
}

// isNode tells whether the process is Node.js, whose events the notes
// name: only then do the notes say which Node event a call is.
func (p *ProcessEvent) isNode() bool { return strings.HasPrefix(p.Comm, "node") }

// processLane is any program's socket calls, seen from the kernel.
type processLane struct{ ev *ProcessEvent }

func (l processLane) kind() string                              { return l.ev.Kind.String() }
func (l processLane) endpoints() (local, remote netip.AddrPort) { return l.ev.Local, l.ev.Remote }
func (l processLane) payload() []byte                           { return l.ev.Preview }
func (l processLane) side() Side                                { return l.ev.Side }
func (l processLane) glyph() string                             { return "▪ " }
func (l processLane) style(s *Styles) style                     { return s.process }

func (l processLane) summary(payloadLen int) string {
	ev := l.ev
	switch ev.Kind {
	case ProcessAccept:
		return "connection from " + ev.Remote.String()
	case ProcessConnect:
		if ev.Err != "" {
			return "to " + ev.Remote.String() + ": " + ev.Err
		}
		return "to " + ev.Remote.String() + " from " + ev.Local.String()
	case ProcessRead:
		if ev.Len == 0 {
			return "0 bytes: end of stream"
		}
		return Plural(ev.Len, "byte")
	case ProcessWrite:
		return Plural(ev.Len, "byte")
	case ProcessShutdown:
		return ev.How
	case ProcessClose:
		if !ev.Remote.IsValid() {
			return "the listening socket"
		}
		return "the socket"
	}
	return ""
}

func (l processLane) short(payloadLen int) string {
	if l.ev.Kind == ProcessAccept {
		return "from " + l.ev.Remote.String()
	}
	return l.summary(payloadLen)
}

// note says what the call did and, for Node, which of its events it is
// where that is exact.
func (l processLane) note(payloadLen int) string {
	ev := l.ev
	node := ev.isNode()
	switch ev.Kind {
	case ProcessAccept:
		if node {
			return "accept() returned it: Node's 'connection' fires now, after the handshake"
		}
		return "accept() returned it, after the kernel finished the handshake"
	case ProcessConnect:
		if node {
			return "connect(): the kernel sends the SYN; Node's 'connect' fires once the SYN+ACK came"
		}
		return "connect(): the kernel sends the SYN"
	case ProcessRead:
		switch {
		case ev.Len == 0 && node:
			return "the peer's FIN: Node's 'end'"
		case ev.Len == 0:
			return "the peer sent FIN: nothing more will come"
		case node:
			return "one read(): a 'data' event (libuv reads in a loop; one 'data' may hold several reads)"
		}
		return "one read returned these bytes from the kernel's receive buffer"
	case ProcessWrite:
		if node {
			return "socket.write(): the bytes are the kernel's now"
		}
		return "the program handed the bytes to the kernel"
	case ProcessShutdown:
		switch {
		case ev.How == "SHUT_RD":
			return "the program reads no more; nothing is sent"
		case node:
			return "socket.end(): the kernel sends FIN; the program may still read"
		}
		return "the kernel sends FIN; the program may still read"
	case ProcessClose:
		if node {
			return "the descriptor is closed: Node's 'close' follows"
		}
		return "close(): the kernel sends its FIN if it has not yet (RST if bytes were left unread)"
	}
	return ""
}

func (l processLane) fill(j *JSONProgramEvent) {
	ev := l.ev
	j.Side, j.PID, j.Comm, j.Len, j.How, j.Error = ev.Side.String(), ev.PID, ev.Comm, ev.Len, ev.How, ev.Err
}

// markerKind is what a ladder or HTML marker starts with: the kind, and
// for a process's call the process, "node[4242] write".
func markerKind(e *Event) string {
	if e.Source == SourceProcess {
		return e.Process.Label() + " " + e.Kind()
	}
	return e.Kind()
}
