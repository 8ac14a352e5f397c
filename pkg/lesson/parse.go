// Package lesson loads lessons and runs them: each step narrates, acts on a
// real server and client, and checks the events seen on the wire and in the
// programs against what the step expects.
//
// A lesson is a Markdown file (see lessons/). Front matter between "---"
// lines sets lesson, title, port, host (the server's listen address:
// 127.0.0.1, ::1, or :: for dual-stack), and the server: server (reply,
// echo, silent, never-accept, no-read, slow-read, lines), reply "TEXT",
// reply-on-eof "TEXT", read-delay DURATION, read-size N, read-interval
// DURATION, receive-buffer N, backlog N. Each "## " heading starts a step.
// A step holds prose, a ```js block (the Node.js code from the notes), a
// ```go block (its Go twin), and directives in HTML comments, which code
// hosts don't show:
//
//	<!-- do: ACTION [ARG] -->            run an action; several run in order
//	<!-- expect: SOURCE KIND [k=v...] --> an event that must be seen, after the previous expect's
//	<!-- expect-anytime: ... -->         an event that must be seen at any time during the step
//	<!-- expect-none: ... -->            an event that must not be seen during the step
//	<!-- predict: QUESTION | ANSWER -->  ask the learner before acting, reveal after
//	<!-- hint: TEXT -->                  shown when the learner asks for a hint
//
// Actions: listen; dial [HOST] (the client connects, from HOST's family:
// 127.0.0.1 or ::1); dial-closed (a port where nothing listens: the lesson's
// port + 1); write "TEXT" (a Go-quoted string); write-bytes N;
// write-until-blocked (until the receiver's window closes); read; read-all
// (until the server's FIN); close; close-write; abort; wait DURATION;
// set-reply "TEXT"; server-close and server-abort (the latest connection);
// wait-outside (the learner's own client; skipped or under --auto, the
// playground plays the learner); try-it-yourself.
// Sources and kinds: wire (SYN, SYN+ACK, ACK, DATA, FIN, RST, * for any),
// server (listening, connection, data, write, close, error), client (dial,
// connected, write, read, half-close, close, abort, error).
// Conditions: from=client|server, len=N, seq=N, ack=N, win=N (relative
// numbers, the window scaled), step=NAME (a capture step with '-' for
// spaces: handshake-3/3, teardown-2+3/4, refused), flags=LETTERS (tcpdump's,
// e.g. S. or FP.), analysis=NAME (a Wireshark remark, '-' for spaces:
// zero-window, retransmission), ip=4|6 (the address family on the wire, or
// of a program event's peer), family=IPv4|IPv6 and node-remote=ADDRESS (as
// Node's remoteFamily and remoteAddress say), port=ephemeral (the peer's
// port is in the kernel's ephemeral range), detail=WORD (a program event's
// detail contains it), min=N (at least N such events).
package lesson

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
)

// Lesson is one parsed lesson file.
type Lesson struct {
	Number int
	Title  string
	File   string // the file's name, for messages
	Intro  string // prose before the first step
	Server ServerSpec
	Steps  []Step
}

// ServerSpec is the server a lesson runs.
type ServerSpec struct {
	Behavior      string // reply, echo, silent, never-accept, no-read, slow-read, lines
	Reply         string // for reply
	ReplyOnEOF    string // written after the client's FIN, before the server closes
	HasReplyOnEOF bool
	Port          int
	Host          string // listen address: 127.0.0.1 (default), ::1, or :: (dual-stack)
	ReadDelay     time.Duration
	ReadSize      int
	ReadInterval  time.Duration
	ReceiveBuffer int
	Backlog       int
}

// Step is one step of a lesson.
type Step struct {
	Title   string
	Text    string // prose, Markdown
	Node    string // the Node.js code
	Go      string // the Go twin
	Actions []Action
	Expects []Expect
	Predict *Predict
	Hint    string
	Line    int // where the step starts in its file
}

// Action is something a step does.
type Action struct {
	Verb string
	Arg  string // the decoded argument: text to write, a duration
}

// Predict is a question asked before a step acts, answered after.
type Predict struct{ Question, Answer string }

// Expect is an event a step must see.
type Expect struct {
	Source  string // wire, server, client
	Kind    string // as the source names it; "*" is any
	Where   []Cond
	Anytime bool   // may happen at any time in the step, not after the previous expect
	None    bool   // must not happen during the step
	Text    string // the directive as written, for messages
}

// Cond is one key=value condition of an Expect.
type Cond struct{ Key, Value string }

var (
	actionArgs = map[string]string{ // verb: what its argument is ("" for none)
		"listen": "", "dial": "host?", "dial-closed": "", "read": "", "read-all": "", "close": "",
		"close-write": "", "abort": "", "write-until-blocked": "", "server-close": "", "server-abort": "",
		"wait-outside": "", "try-it-yourself": "",
		"write": "text", "set-reply": "text", "wait": "duration", "write-bytes": "number",
	}
	sourceKinds = map[string][]string{
		"wire":   {"SYN", "SYN+ACK", "ACK", "DATA", "FIN", "RST", "*"},
		"server": {"listening", "connection", "data", "write", "close", "error"},
		"client": {"dial", "connected", "write", "read", "half-close", "close", "abort", "error"},
	}
	condKeys = map[string]bool{
		"from": true, "len": true, "seq": true, "ack": true, "win": true, "step": true, "flags": true,
		"analysis": true, "ip": true, "family": true, "node-remote": true, "port": true, "detail": true, "min": true,
	}
	behaviors = map[string]bool{"reply": true, "echo": true, "silent": true, "never-accept": true, "no-read": true, "slow-read": true, "lines": true}
)

// WithPort returns a copy of the lesson whose server listens on port, with
// the text and code saying so: the lesson's own port number, wherever it
// is written, becomes the new one.
func (l *Lesson) WithPort(port int) *Lesson {
	c := *l
	from, to := strconv.Itoa(l.Server.Port), strconv.Itoa(port)
	swap := func(s string) string { return strings.ReplaceAll(s, from, to) }
	c.Server.Port = port
	c.Intro = swap(l.Intro)
	c.Steps = make([]Step, len(l.Steps))
	for i, s := range l.Steps {
		s.Text, s.Node, s.Go, s.Hint = swap(s.Text), swap(s.Node), swap(s.Go), swap(s.Hint)
		if s.Predict != nil {
			p := Predict{Question: swap(s.Predict.Question), Answer: swap(s.Predict.Answer)}
			s.Predict = &p
		}
		c.Steps[i] = s
	}
	return &c
}

// Load parses every *.md file of fsys as a lesson, sorted by number.
func Load(fsys fs.FS) ([]*Lesson, error) {
	names, err := fs.Glob(fsys, "*.md")
	if err != nil {
		return nil, err
	}
	var all []*Lesson
	seen := map[int]string{}
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		l, err := Parse(name, data)
		if err != nil {
			return nil, err
		}
		if other, dup := seen[l.Number]; dup {
			return nil, fmt.Errorf("%s and %s are both lesson %d", other, name, l.Number)
		}
		seen[l.Number] = name
		all = append(all, l)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Number < all[j].Number })
	return all, nil
}

// Parse reads one lesson file. Errors name the file and line.
func Parse(name string, data []byte) (*Lesson, error) {
	l := &Lesson{File: path.Base(name), Server: ServerSpec{Behavior: "reply", Port: 4000}}
	p := &parser{lesson: l, file: l.File}
	if err := p.parse(data); err != nil {
		return nil, err
	}
	return l, nil
}

type parser struct {
	lesson *Lesson
	file   string
	line   int
	step   *Step // the step being read; nil in the intro
	prose  strings.Builder
	fence  string // the language of the open code block, "" when none is open
	code   strings.Builder
}

func (p *parser) errorf(format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, p.line, fmt.Sprintf(format, a...))
}

func (p *parser) parse(data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	inFront := false
	for sc.Scan() {
		p.line++
		line := sc.Text()
		switch {
		case p.line == 1 && line == "---":
			inFront = true
		case inFront && line == "---":
			inFront = false
		case inFront:
			if err := p.frontMatter(line); err != nil {
				return err
			}
		case p.fence != "":
			if strings.TrimSpace(line) == "```" {
				if err := p.closeFence(); err != nil {
					return err
				}
				continue
			}
			p.code.WriteString(line + "\n")
		case strings.HasPrefix(line, "```"):
			p.fence = strings.TrimSpace(strings.TrimPrefix(line, "```"))
			if p.fence == "" {
				p.fence = "text"
			}
			p.code.Reset()
		case strings.HasPrefix(line, "## "):
			p.endStep()
			p.lesson.Steps = append(p.lesson.Steps, Step{Title: strings.TrimSpace(line[3:]), Line: p.line})
			p.step = &p.lesson.Steps[len(p.lesson.Steps)-1]
		case strings.HasPrefix(line, "# "):
			// The lesson's heading: the title comes from the front matter.
		case strings.HasPrefix(strings.TrimSpace(line), "<!--"):
			if err := p.directive(strings.TrimSpace(line)); err != nil {
				return err
			}
		default:
			p.prose.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", p.file, err)
	}
	if inFront {
		return p.errorf("front matter is not closed with ---")
	}
	if p.fence != "" {
		return p.errorf("a ``` block is not closed")
	}
	p.endStep()
	return p.validate()
}

func (p *parser) frontMatter(line string) error {
	key, value, ok := strings.Cut(line, ":")
	if !ok {
		return p.errorf("front matter line %q is not key: value", line)
	}
	value = strings.TrimSpace(value)
	var err error
	switch strings.TrimSpace(key) {
	case "lesson":
		p.lesson.Number, err = strconv.Atoi(value)
	case "title":
		p.lesson.Title = value
	case "server":
		if !behaviors[value] {
			return p.errorf("unknown server behaviour %q", value)
		}
		p.lesson.Server.Behavior = value
	case "reply":
		p.lesson.Server.Reply, err = strconv.Unquote(value)
	case "port":
		p.lesson.Server.Port, err = strconv.Atoi(value)
	case "host":
		value = strings.Trim(value, `"`)
		if _, perr := netip.ParseAddr(value); perr != nil {
			return p.errorf("host %q is not an IP address", value)
		}
		p.lesson.Server.Host = value
	case "reply-on-eof":
		p.lesson.Server.ReplyOnEOF, err = strconv.Unquote(value)
		p.lesson.Server.HasReplyOnEOF = true
	case "read-delay":
		p.lesson.Server.ReadDelay, err = time.ParseDuration(value)
	case "read-interval":
		p.lesson.Server.ReadInterval, err = time.ParseDuration(value)
	case "read-size":
		p.lesson.Server.ReadSize, err = strconv.Atoi(value)
	case "receive-buffer":
		p.lesson.Server.ReceiveBuffer, err = strconv.Atoi(value)
	case "backlog":
		p.lesson.Server.Backlog, err = strconv.Atoi(value)
	default:
		return p.errorf("unknown front matter key %q", key)
	}
	if err != nil {
		return p.errorf("%s: %v", key, err)
	}
	return nil
}

func (p *parser) closeFence() error {
	code := p.code.String()
	lang := p.fence
	p.fence = ""
	if p.step == nil {
		return p.errorf("a code block before the first step")
	}
	switch lang {
	case "js", "javascript":
		if p.step.Node != "" {
			return p.errorf("step %q has two js blocks", p.step.Title)
		}
		p.step.Node = code
	case "go":
		if p.step.Go != "" {
			return p.errorf("step %q has two go blocks", p.step.Title)
		}
		p.step.Go = code
	default:
		p.prose.WriteString("```" + lang + "\n" + code + "```\n")
	}
	return nil
}

func (p *parser) endStep() {
	text := strings.TrimSpace(p.prose.String())
	p.prose.Reset()
	if p.step == nil {
		p.lesson.Intro = text
		return
	}
	p.step.Text = text
}

func (p *parser) directive(line string) error {
	body, ok := strings.CutPrefix(line, "<!--")
	if ok {
		body, ok = strings.CutSuffix(body, "-->")
	}
	if !ok {
		return p.errorf("a directive must open and close on one line: <!-- do: ... -->")
	}
	name, arg, ok := strings.Cut(strings.TrimSpace(body), ":")
	if !ok {
		return nil // an ordinary comment
	}
	name, arg = strings.TrimSpace(name), strings.TrimSpace(arg)
	if p.step == nil {
		return p.errorf("directive %q before the first step (## heading)", name)
	}
	switch name {
	case "do":
		a, err := parseAction(arg)
		if err != nil {
			return p.errorf("%v", err)
		}
		p.step.Actions = append(p.step.Actions, a)
	case "expect", "expect-anytime", "expect-none":
		e, err := ParseExpect(arg)
		if err != nil {
			return p.errorf("%v", err)
		}
		e.Anytime = name == "expect-anytime"
		e.None = name == "expect-none"
		p.step.Expects = append(p.step.Expects, e)
	case "predict":
		q, a, ok := strings.Cut(arg, "|")
		if !ok || strings.TrimSpace(q) == "" || strings.TrimSpace(a) == "" {
			return p.errorf("predict needs QUESTION | ANSWER")
		}
		p.step.Predict = &Predict{Question: strings.TrimSpace(q), Answer: strings.TrimSpace(a)}
	case "hint":
		p.step.Hint = arg
	default:
		return p.errorf("unknown directive %q (do, expect, expect-anytime, expect-none, predict, hint)", name)
	}
	return nil
}

func parseAction(s string) (Action, error) {
	verb, arg, _ := strings.Cut(s, " ")
	arg = strings.TrimSpace(arg)
	kind, ok := actionArgs[verb]
	if !ok {
		return Action{}, fmt.Errorf("unknown action %q", verb)
	}
	switch kind {
	case "":
		if arg != "" {
			return Action{}, fmt.Errorf("action %s takes no argument, got %q", verb, arg)
		}
	case "text":
		text, err := strconv.Unquote(arg)
		if err != nil {
			return Action{}, fmt.Errorf("action %s needs a quoted string, got %q", verb, arg)
		}
		arg = text
	case "duration":
		if _, err := time.ParseDuration(arg); err != nil {
			return Action{}, fmt.Errorf("action %s needs a duration such as 200ms: %v", verb, err)
		}
	case "number":
		if n, err := strconv.Atoi(arg); err != nil || n <= 0 || n > 64<<20 {
			return Action{}, fmt.Errorf("action %s needs a byte count from 1 to 64 MiB, got %q", verb, arg)
		}
	case "host?":
		if arg != "" {
			if _, err := netip.ParseAddr(arg); err != nil {
				return Action{}, fmt.Errorf("action %s takes an IP address to connect to, got %q", verb, arg)
			}
		}
	}
	return Action{Verb: verb, Arg: arg}, nil
}

// ParseExpect reads "SOURCE KIND [key=value...]".
func ParseExpect(s string) (Expect, error) {
	fields := strings.Fields(s)
	if len(fields) < 2 {
		return Expect{}, fmt.Errorf("expect needs SOURCE KIND, got %q", s)
	}
	e := Expect{Source: fields[0], Kind: fields[1], Text: s}
	kinds, ok := sourceKinds[e.Source]
	if !ok {
		return Expect{}, fmt.Errorf("unknown source %q (wire, server, client)", e.Source)
	}
	if !contains(kinds, e.Kind) {
		return Expect{}, fmt.Errorf("unknown %s kind %q (%s)", e.Source, e.Kind, strings.Join(kinds, ", "))
	}
	for _, f := range fields[2:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !condKeys[k] || v == "" {
			return Expect{}, fmt.Errorf("condition %q is not one of from=, len=, seq=, ack=, win=, step=, flags=, analysis=, ip=, family=, node-remote=, port=, detail=, min=", f)
		}
		switch k {
		case "len", "seq", "ack", "win", "min":
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				return Expect{}, fmt.Errorf("condition %s needs a number, got %q", k, v)
			}
		case "from":
			if v != "client" && v != "server" {
				return Expect{}, fmt.Errorf("from= is client or server, got %q", v)
			}
		case "ip":
			if v != "4" && v != "6" {
				return Expect{}, fmt.Errorf("ip= is 4 or 6, got %q", v)
			}
		case "family":
			if v != "IPv4" && v != "IPv6" {
				return Expect{}, fmt.Errorf("family= is IPv4 or IPv6, got %q", v)
			}
		case "port":
			if v != "ephemeral" {
				return Expect{}, fmt.Errorf("port= can only be ephemeral, got %q", v)
			}
		case "analysis":
			if !knownAnalysis(v) {
				return Expect{}, fmt.Errorf("analysis=%s is not a remark the capture makes", v)
			}
		}
		e.Where = append(e.Where, Cond{k, v})
	}
	return e, nil
}

func (p *parser) validate() error {
	l := p.lesson
	switch {
	case l.Number <= 0:
		return fmt.Errorf("%s: front matter needs lesson: N", p.file)
	case l.Title == "":
		return fmt.Errorf("%s: front matter needs title:", p.file)
	case len(l.Steps) == 0:
		return fmt.Errorf("%s: no steps (## headings)", p.file)
	case l.Server.Port <= 0 || l.Server.Port > 65535:
		return fmt.Errorf("%s: port %d is out of range", p.file, l.Server.Port)
	}
	for _, s := range l.Steps {
		if s.Node == "" || s.Go == "" {
			return fmt.Errorf("%s:%d: step %q needs a js block (the Node.js code) and a go block (its Go twin)", p.file, s.Line, s.Title)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// knownAnalysis reports whether name (with '-' for spaces) is one of the
// capture's analysis remarks.
func knownAnalysis(name string) bool {
	for a := capture.Retransmission; a <= capture.WindowFull; a <<= 1 {
		if dashed(a.String()) == name {
			return true
		}
	}
	return false
}

// dashed writes a multi-word name as lessons do: spaces become '-'.
func dashed(s string) string { return strings.ReplaceAll(s, " ", "-") }
