// Package lesson loads lessons and runs them: each step narrates, acts on a
// real server and client, and checks the events of a live timeline (the
// wire and the programs) against what the step expects.
//
// A lesson is a Markdown file (see lessons/ and lessons/README.md, the
// format reference generated from this package's vocabulary in vocab.go).
// The engine never opens a capture and never knows about privileges: it is
// handed a Session (the live timeline the command line built) and a UI.
package lesson

import (
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcp-playground/playground/pkg/server"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// Lesson is one parsed lesson file.
type Lesson struct {
	Number int
	Title  string
	File   string // the file's name, for messages
	Intro  string // prose before the first step
	Server ServerSpec
	Steps  []Step
	// Lab: the lesson runs on a link it controls (front matter `link:
	// lab`): its server in the lab's server namespace, its client in the
	// client namespace (pkg/netlab), and its steps may set the link.
	Lab bool
}

// ServerSpec is the server a lesson runs.
type ServerSpec struct {
	Behavior      server.Behavior
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

// Step is one step of a lesson. Its prose is split in two: what is shown
// before it runs (the setup and its question) and what is shown after
// (the answer and the explanation), so nothing on screen answers a
// prediction before the learner has made one.
type Step struct {
	Title   string
	Before  string // prose shown before the step runs (Markdown)
	After   string // prose shown after it ran
	Node    string // the Node.js code
	Go      string // the Go twin
	Predict *Predict
	Hint    string
	Actions []Action
	Expects []Expect
	Line    int // where the step starts in its file
}

// Predict is a question asked before a step acts, answered after.
type Predict struct{ Question, Answer string }

// Action is something a step does: one entry of actionDefs, with its
// argument parsed.
type Action struct {
	Verb string
	value
	def *actionDef
}

// Expect is an event a step must see.
type Expect struct {
	Source  timeline.Source
	Kind    string // as the source names it; "*" is any
	Where   []Cond
	Anytime bool   // may happen at any time in the step, not after the previous expect
	None    bool   // must not happen during the step
	Text    string // the directive as written, for messages
	needed  int    // how many matching events it wants (min=N, or 1)
}

// Cond is one key=value condition of an Expect: one entry of condDefs,
// with its value parsed.
type Cond struct {
	Key string
	value
	def *condDef
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
		if name == "README.md" {
			continue // the format reference, not a lesson
		}
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

// ClosedPort is the port where nothing listens, for dial-closed: the
// lesson's port + 1 (or - 1 at the top of the range).
func ClosedPort(port int) int {
	if port == 65535 {
		return port - 1
	}
	return port + 1
}

// Ports are the ports the lesson uses: its server's and the closed one.
func (l *Lesson) Ports() []int { return []int{l.Server.Port, ClosedPort(l.Server.Port)} }

// WithPort returns a copy of the lesson whose server listens on port, with
// every port it uses moved: the server's and the closed port after it, in
// the server and wherever the text, code, questions and hints name them.
func (l *Lesson) WithPort(port int) *Lesson {
	c := *l
	c.Server.Port = port
	swap := portSwapper(map[int]int{l.Server.Port: port, ClosedPort(l.Server.Port): ClosedPort(port)})
	c.Title, c.Intro = swap(l.Title), swap(l.Intro)
	c.Steps = make([]Step, len(l.Steps))
	for i, s := range l.Steps {
		s.Title, s.Before, s.After, s.Node, s.Go, s.Hint = swap(s.Title), swap(s.Before), swap(s.After), swap(s.Node), swap(s.Go), swap(s.Hint)
		if s.Predict != nil {
			p := Predict{Question: swap(s.Predict.Question), Answer: swap(s.Predict.Answer)}
			s.Predict = &p
		}
		c.Steps[i] = s
	}
	return &c
}

// portSwapper replaces whole numbers (not digits inside longer numbers)
// by the map's values.
func portSwapper(moves map[int]int) func(string) string {
	return func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); {
			if !isDigit(s[i]) {
				b.WriteByte(s[i])
				i++
				continue
			}
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			n, err := strconv.Atoi(s[i:j])
			if to, ok := moves[n]; ok && err == nil {
				b.WriteString(strconv.Itoa(to))
			} else {
				b.WriteString(s[i:j])
			}
			i = j
		}
		return b.String()
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// dashed writes a multi-word name as lessons do: spaces become '-'.
func dashed(s string) string { return strings.ReplaceAll(s, " ", "-") }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// WatchesPrograms reports whether the lesson looks at programs other than
// its own server and client (the process lane): a notes-server step, or a
// check on the process source.
func (l *Lesson) WatchesPrograms() bool {
	for _, s := range l.Steps {
		for _, a := range s.Actions {
			if a.Verb == "notes-server" {
				return true
			}
		}
		for _, x := range s.Expects {
			if x.Source == timeline.SourceProcess {
				return true
			}
		}
	}
	return false
}
