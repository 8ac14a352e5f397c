package lesson

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/client"
	"github.com/tcp-playground/playground/pkg/kernel"
	"github.com/tcp-playground/playground/pkg/server"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// This file is the lesson vocabulary: every front matter key, server
// behaviour, action and condition a lesson may use is declared here once,
// with its argument, its one-line documentation and the code that runs or
// matches it. The parser validates against these tables, the engine
// dispatches through them, and lessons/README.md is generated from them
// (TestFormatReference keeps it in sync). To add an action or a condition,
// add one entry below.

// argKind is what a directive's argument is.
type argKind uint8

const (
	argNone     argKind = iota
	argText             // a Go-quoted string: "hello\n"
	argDuration         // 200ms, 1.5s
	argBytes            // a byte count from 1 to 64 MiB
	argHost             // an optional IP address
	argNumber           // an unsigned number
	argWord             // one word from a list, or free text without spaces
)

// actionDef declares an action: `<!-- do: NAME [ARG] -->`.
type actionDef struct {
	name string
	arg  argKind
	doc  string
	run  func(r *runner, ctx context.Context, a *Action, done <-chan struct{}) error
}

// actionDefs is every action a step may run.
var actionDefs = []actionDef{
	{"listen", argNone, "start the lesson's server (a fresh one, if one runs already)", (*runner).actListen},
	{"dial", argHost, "the client connects to the server; HOST (127.0.0.1 or ::1) picks the family", (*runner).actDial},
	{"dial-closed", argNone, "the client connects to a port where nothing listens (the lesson's port + 1): refused", (*runner).actDialClosed},
	{"write", argText, "the client writes TEXT (a Go-quoted string)", (*runner).actWrite},
	{"write-bytes", argBytes, "the client writes N bytes of readable text in one call", (*runner).actWriteBytes},
	{"write-until-blocked", argNone, "the client writes until a write waits: the receiver's window is closed", (*runner).actWriteUntilBlocked},
	{"read", argNone, "the client reads once (what is there, end of stream, or nothing in time)", (*runner).actRead},
	{"read-all", argNone, "the client reads until the server's FIN", (*runner).actReadAll},
	{"close", argNone, "the client closes its socket", (*runner).actClose},
	{"close-write", argNone, "the client half-closes: FIN, but it still reads", (*runner).actCloseWrite},
	{"abort", argNone, "the client aborts: SO_LINGER 0, then close: RST", (*runner).actAbort},
	{"wait", argDuration, "wait this long (for something the kernel does on a timer)", (*runner).actWait},
	{"set-reply", argText, "the server answers each message with TEXT from now on", (*runner).actSetReply},
	{"server-close", argNone, "the server closes its latest connection", (*runner).actServerClose},
	{"server-abort", argNone, "the server aborts its latest connection (RST)", (*runner).actServerAbort},
	{"wait-outside", argNone, "wait for the learner's own client (nc, curl, node); s or --auto: the playground plays it", (*runner).actWaitOutside},
	{"dial-timeout", argDuration, "the client connects, giving up after DURATION (Go's Dialer.Timeout, Node's socket.setTimeout); failing is not an error", (*runner).actDialTimeout},
	{"link-delay", argDuration, "a lab lesson's link delays every packet by DURATION, each way (rules stay, and count again from here)", (*runner).actLinkDelay},
	{"link-drop-syn", argNone, "a lab lesson's link drops every SYN from the client: the server never hears of it", (*runner).actLinkDropSYN},
	{"link-drop-data", argNumber, "a lab lesson's link drops the client's Nth data segment from now on, once (its retransmission goes through)", (*runner).actLinkDropData},
	{"link-clear", argNone, "a lab lesson's link is a perfect wire again: no delay, no rule", (*runner).actLinkClear},
	{"try-it-yourself", argNone, "keep everything running while the learner tries things; skipped with --auto", (*runner).actTryItYourself},
	{"notes-server", argNone, "replace the lesson's server with the notes' own server.js, run by node as the learner; the client then connects, writes a line, reads the reply and closes (without node: the step's checks read not checkable)", (*runner).actNotesServer},
}

// frontMatterDef declares a front matter key: `KEY: VALUE`.
type frontMatterDef struct {
	key string
	arg argKind
	doc string
	set func(l *Lesson, v value)
}

var frontMatterDefs = []frontMatterDef{
	{"lesson", argNumber, "the lesson's number (required)", func(l *Lesson, v value) { l.Number = int(v.num) }},
	{"title", argWord, "its title (required)", func(l *Lesson, v value) { l.Title = v.text }},
	{"port", argNumber, "the server's port (default 4000); --port moves it, and every mention of it and of the port after it", func(l *Lesson, v value) { l.Server.Port = int(v.num) }},
	{"host", argHost, "the server's listen address: 127.0.0.1 (default), ::1, or :: (dual-stack)", func(l *Lesson, v value) { l.Server.Host = v.host }},
	{"server", argWord, "the server's behaviour (below; default reply)", func(l *Lesson, v value) { l.Server.Behavior = behaviorByName[v.text] }},
	{"reply", argText, "what a reply server answers to each message", func(l *Lesson, v value) { l.Server.Reply = v.text }},
	{"reply-on-eof", argText, "written after the client's FIN, before the server closes (a half-open connection)", func(l *Lesson, v value) {
		l.Server.ReplyOnEOF, l.Server.HasReplyOnEOF = v.text, true
	}},
	{"read-delay", argDuration, "the server waits this long before each read", func(l *Lesson, v value) { l.Server.ReadDelay = v.duration }},
	{"read-interval", argDuration, "a slow-read server reads this often", func(l *Lesson, v value) { l.Server.ReadInterval = v.duration }},
	{"read-size", argNumber, "a slow-read server reads this many bytes at a time", func(l *Lesson, v value) { l.Server.ReadSize = int(v.num) }},
	{"receive-buffer", argNumber, "the server socket's SO_RCVBUF", func(l *Lesson, v value) { l.Server.ReceiveBuffer = int(v.num) }},
	{"backlog", argNumber, "the listen backlog (the accept queue's length)", func(l *Lesson, v value) { l.Server.Backlog = int(v.num) }},
	{"link", argWord, "`lab`: the server and the client run in two network namespaces joined by a link the lesson controls (needs root and /dev/net/tun)", func(l *Lesson, v value) { l.Lab = v.text == "lab" }},
}

// behaviorDefs are the servers a lesson may run (front matter `server:`).
var behaviorDefs = []struct {
	name     string
	behavior server.Behavior
	doc      string
}{
	{"reply", server.Reply, "answers each message with `reply` (the notes' server)"},
	{"echo", server.Echo, "writes back what it reads"},
	{"silent", server.Silent, "reads and never writes"},
	{"never-accept", server.NeverAccept, "listens but never calls Accept: connections wait in the accept queue"},
	{"no-read", server.NoRead, "accepts and never reads: the receive buffer fills"},
	{"slow-read", server.SlowRead, "reads `read-size` bytes every `read-interval`"},
	{"lines", server.Lines, "answers each newline-terminated line"},
}

var behaviorByName = func() map[string]server.Behavior {
	m := map[string]server.Behavior{}
	for _, b := range behaviorDefs {
		m[b.name] = b.behavior
	}
	return m
}()

// Source is where an expected event comes from.
type Source = timeline.Source

// sourceDefs are the event sources a step may expect, with their kinds.
// Kind names come from the sources' own types, so they can't drift.
var sourceDefs = []struct {
	source timeline.Source
	doc    string
	kinds  []string
}{
	{timeline.SourceWire, "a captured segment: what the kernels sent", kindNames(capture.KindACK, capture.KindRST, "*")},
	{timeline.SourceServer, "the lesson's server code", kindNames(server.Listening, server.Error, "")},
	{timeline.SourceClient, "the lesson's client code", kindNames(client.Dialing, client.Error, "")},
	{timeline.SourceKernel, "the kernel's sockets: a state change, a change of the queues, or (lab lessons) of the client's congestion window", kindNames(timeline.KernelState, timeline.KernelCwnd, "")},
	{timeline.SourceLink, "a lab lesson's link: a packet it dropped (`side=` is the sender's)", []string{"dropped"}},
	{timeline.SourceProcess, "a socket call of a program the playground did not write (node, nc...), seen by the kernel", kindNames(timeline.ProcessAccept, timeline.ProcessClose, "")},
}

// kindNames lists the String of every kind from first to last, plus extra.
func kindNames[K interface {
	~uint8
	String() string
}](first, last K, extra string) []string {
	var names []string
	for k := first; k <= last; k++ {
		names = append(names, k.String())
	}
	if extra != "" {
		names = append(names, extra)
	}
	return names
}

// condDef declares a condition of an expect: `KEY=VALUE`.
type condDef struct {
	key     string
	arg     argKind
	values  []string // for argWord: the values allowed (nil: any word)
	doc     string
	sources []timeline.Source // which sources it can match; nil: all
	match   func(c *Cond, e *timeline.Event) bool
}

var (
	wireOnly   = []timeline.Source{timeline.SourceWire}
	kernelOnly = []timeline.Source{timeline.SourceKernel}
)

// stateNames are Linux's TCP state names.
func stateNames() []string {
	var names []string
	for st := kernel.Established; st <= kernel.NewSynRecv; st++ {
		names = append(names, st.String())
	}
	return names
}

var condDefs = []condDef{
	{"from", argWord, []string{"client", "server"}, "the side that sent the segment", wireOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Segment.FromClient == (c.text == "client")
	}},
	{"len", argNumber, nil, "payload bytes: a segment's, or what a program read or wrote", nil, func(c *Cond, e *timeline.Event) bool {
		return uint64(e.PayloadLen()) == c.num
	}},
	{"seq", argNumber, nil, "the relative sequence number", wireOnly, func(c *Cond, e *timeline.Event) bool {
		return uint64(e.Segment.Seq) == c.num
	}},
	{"ack", argNumber, nil, "the relative acknowledgement number (ACK flag set)", wireOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Segment.Flags&capture.FlagACK != 0 && uint64(e.Segment.Ack) == c.num
	}},
	{"win", argNumber, nil, "the window, scaled", wireOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Segment.ScaledWindow() == c.num
	}},
	{"step", argWord, stepNames(), "the handshake or teardown step, '-' for spaces", wireOnly, func(c *Cond, e *timeline.Event) bool {
		return dashed(e.Segment.Step.String()) == c.text
	}},
	{"flags", argWord, nil, "tcpdump's flag letters, e.g. S. or FP.", wireOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Segment.Flags.String() == c.text
	}},
	{"analysis", argWord, analysisNames(), "a Wireshark analysis remark, '-' for spaces", wireOnly, func(c *Cond, e *timeline.Event) bool {
		for _, name := range e.Segment.Analysis.Names() {
			if dashed(name) == c.text {
				return true
			}
		}
		return false
	}},
	{"ip", argWord, []string{"4", "6"}, "the address family: on the wire, or of a program event's peer", nil, func(c *Cond, e *timeline.Event) bool {
		_, remote := e.Endpoints()
		a := remote.Addr()
		return a.IsValid() && (a.Unmap().Is4() == (c.text == "4"))
	}},
	{"family", argWord, []string{"IPv4", "IPv6"}, "the peer's family as Node's remoteFamily says", []timeline.Source{timeline.SourceServer}, func(c *Cond, e *timeline.Event) bool {
		return e.Server.Family == c.text
	}},
	{"node-remote", argWord, nil, "the peer's address as Node's remoteAddress says", []timeline.Source{timeline.SourceServer}, func(c *Cond, e *timeline.Event) bool {
		return e.Server.NodeRemoteAddress == c.text
	}},
	{"port", argWord, []string{"ephemeral"}, "the client's port is in the kernel's ephemeral range", nil, func(c *Cond, e *timeline.Event) bool {
		return ephemeral(clientPort(e))
	}},
	{"detail", argWord, nil, "a program event's detail or error contains the word ('-' for spaces)", []timeline.Source{timeline.SourceServer, timeline.SourceClient}, func(c *Cond, e *timeline.Event) bool {
		return strings.Contains(programDetail(e), strings.ReplaceAll(c.text, "-", " "))
	}},
	{"side", argWord, []string{"client", "server"}, "the end of the connection it belongs to (the client sent the SYN)", nil, func(c *Cond, e *timeline.Event) bool {
		return e.Side().String() == c.text
	}},
	{"old", argWord, stateNames(), "the state a socket left", kernelOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Kernel.Kind == timeline.KernelState && e.Kernel.Old == c.text
	}},
	{"new", argWord, stateNames(), "the state a socket entered (TIME_WAIT as sock_diag confirms it)", kernelOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Kernel.Kind == timeline.KernelState && e.Kernel.New == c.text
	}},
	{"accept-queue", argNumber, nil, "a listener's accept queue: handshakes done, not yet accepted", kernelOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Kernel.Kind == timeline.KernelQueue && e.Kernel.Listener && uint64(e.Kernel.AcceptQueue) == c.num
	}},
	{"backlog", argNumber, nil, "a listener's backlog, as the kernel applies it", kernelOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Kernel.Kind == timeline.KernelQueue && e.Kernel.Listener && uint64(e.Kernel.Backlog) == c.num
	}},
	{"window", argNumber, nil, "the receive window a connection advertises, in bytes", kernelOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Kernel.Kind == timeline.KernelQueue && e.Kernel.HasWindow && uint64(e.Kernel.Window) == c.num
	}},
	{"cwnd-over", argNumber, nil, "a sender's congestion window is over N segments", kernelOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Kernel.Kind == timeline.KernelCwnd && uint64(e.Kernel.Cwnd) > c.num
	}},
	{"phase", argWord, []string{timeline.PhaseSlowStart, timeline.PhaseAvoidance, timeline.PhaseDisorder, timeline.PhaseRecovery, timeline.PhaseLoss, timeline.PhaseReduce},
		"the sender's congestion control: slow start, congestion avoidance, or repairing a loss", kernelOnly, func(c *Cond, e *timeline.Event) bool {
			return e.Kernel.Kind == timeline.KernelCwnd && e.Kernel.Phase == c.text
		}},
	{"cut", argWord, []string{"yes"}, "the congestion window is below the largest it had", kernelOnly, func(c *Cond, e *timeline.Event) bool {
		return e.Kernel.Kind == timeline.KernelCwnd && e.Kernel.Cwnd < e.Kernel.Peak
	}},
	{"comm", argWord, nil, "the program's command name (node, nc...)", []timeline.Source{timeline.SourceProcess}, func(c *Cond, e *timeline.Event) bool {
		return e.Process.Comm == c.text
	}},
	{"min", argNumber, nil, "at least N such events (default 1)", nil, func(*Cond, *timeline.Event) bool {
		return true // a count, not a property of one event
	}},
}

func stepNames() []string {
	var names []string
	for s := capture.StepHandshake1; s.String() != "?" && s.String() != ""; s++ {
		names = append(names, dashed(s.String()))
	}
	return names
}

func analysisNames() []string {
	var names []string
	for a := capture.Retransmission; a <= capture.TFOIgnored; a <<= 1 {
		names = append(names, dashed(a.String()))
	}
	return names
}

// clientPort is the client's port of an event: the wire's client side,
// the server's peer, or the client's own local port.
func clientPort(e *timeline.Event) uint16 {
	local, remote := e.Endpoints()
	switch e.Source {
	case timeline.SourceWire:
		if e.Segment.FromClient {
			return e.Segment.Src.Port()
		}
		return e.Segment.Dst.Port()
	case timeline.SourceServer:
		return remote.Port()
	}
	return local.Port()
}

// value is a parsed, validated argument.
type value struct {
	text     string
	num      uint64
	duration time.Duration
	host     string
}

// parseArg validates s as an argument of kind k (allowed: the words a
// word argument may be, if limited).
func parseArg(k argKind, s string, allowed []string) (value, error) {
	switch k {
	case argNone:
		if s != "" {
			return value{}, fmt.Errorf("takes no argument, got %q", s)
		}
	case argText:
		text, err := strconv.Unquote(s)
		if err != nil {
			return value{}, fmt.Errorf("needs a quoted string, got %q", s)
		}
		return value{text: text}, nil
	case argDuration:
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return value{}, fmt.Errorf("needs a duration such as 200ms, got %q", s)
		}
		return value{duration: d}, nil
	case argBytes:
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 64<<20 {
			return value{}, fmt.Errorf("needs a byte count from 1 to 64 MiB, got %q", s)
		}
		return value{num: uint64(n)}, nil
	case argNumber:
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return value{}, fmt.Errorf("needs a number, got %q", s)
		}
		return value{num: n}, nil
	case argHost:
		if s == "" {
			return value{}, nil
		}
		s = strings.Trim(s, `"`)
		if _, err := netip.ParseAddr(s); err != nil {
			return value{}, fmt.Errorf("needs an IP address, got %q", s)
		}
		return value{host: s}, nil
	case argWord:
		if s == "" {
			return value{}, fmt.Errorf("needs a value")
		}
		if allowed != nil && !contains(allowed, s) {
			return value{}, fmt.Errorf("is one of %s, got %q", strings.Join(allowed, ", "), s)
		}
		return value{text: s}, nil
	}
	return value{}, nil
}

func (k argKind) synopsis() string {
	return [...]string{argNone: "", argText: ` "TEXT"`, argDuration: " DURATION", argBytes: " N", argHost: " [HOST]", argNumber: " N", argWord: " WORD"}[k]
}
