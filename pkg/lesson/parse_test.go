package lesson

import (
	"strings"
	"testing"

	"github.com/tcp-playground/playground/lessons"
)

// TestLessonFiles validates every embedded lesson: it parses, names only
// known actions and expectations, and each step has its Node.js code and
// its Go twin.
func TestLessonFiles(t *testing.T) {
	all, err := Load(lessons.Files)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no lessons embedded")
	}
	for i, l := range all {
		if l.Number != i+1 {
			t.Errorf("%s is lesson %d, want %d: lessons are numbered 1, 2, 3...", l.File, l.Number, i+1)
		}
		checks := 0
		for _, s := range l.Steps {
			checks += len(s.Expects)
		}
		if checks == 0 {
			t.Errorf("%s checks nothing on the wire or in the server", l.File)
		}
		predicts := 0
		for _, s := range l.Steps {
			if s.Predict != nil {
				predicts++
			}
		}
		if predicts == 0 {
			t.Errorf("%s never asks the learner to predict before it reveals", l.File)
		}
	}
	one := all[0]
	if one.Title != "Creating a TCP server" || one.Server.Reply != "Hello from server" || one.Server.Port != 4000 {
		t.Errorf("lesson 1 front matter: %+v", one)
	}
	hs := one.Steps[1]
	if len(hs.Actions) != 1 || hs.Actions[0].Verb != "dial" || len(hs.Expects) != 8 || hs.Predict == nil {
		t.Errorf("lesson 1 step 2: %+v", hs)
	}
	if !strings.Contains(hs.Node, `server.on("connection"`) || !strings.Contains(hs.Go, "ln.Accept()") {
		t.Errorf("lesson 1 step 2 code: %q / %q", hs.Node, hs.Go)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "---\nlesson: 1\ntitle: T\n---\n## S\n```js\nx\n```\n```go\ny\n```\n"
	tests := []struct {
		name, text, want string
	}{
		{"unknown action", head + "<!-- do: jump -->\n", `lesson.md:12: unknown action "jump"`},
		{"unknown source", head + "<!-- expect: disk SYN -->\n", `unknown source "disk"`},
		{"unknown kind", head + "<!-- expect: wire SYNACK -->\n", `unknown wire kind "SYNACK"`},
		{"bad condition", head + "<!-- expect: wire SYN color=red -->\n", `condition "color=red"`},
		{"unquoted write", head + "<!-- do: write hello -->\n", "needs a quoted string"},
		{"unknown directive", head + "<!-- dance: now -->\n", `unknown directive "dance"`},
		{"old predict comment", head + "<!-- predict: Q | A -->\n", `unknown directive "predict"`},
		{"answer before the run", head + "> **Predict:** Q\n> **Answer:** A\n", "gives its answer before the ### heading"},
		{"question after the run", head + "### After\n> **Predict:** Q\n", "asks its question after the ### heading"},
		{"answer without question", head + "### After\n> **Answer:** A\n", "has an answer but no > **Predict:** question"},
		{"question without answer", head + "> **Predict:** Q\n", "needs both a > **Predict:** question"},
		{"condition of another source", head + "<!-- expect: server data from=client -->\n", "from= is about wire events, not server"},
		{"bad number", head + "<!-- expect: wire DATA len=five -->\n", "condition len= needs a number"},
		{"missing go twin", "---\nlesson: 1\ntitle: T\n---\n## S\n```js\nx\n```\n", "needs a js block (the Node.js code) and a go block"},
		{"no number", "---\ntitle: T\n---\n## S\n", "needs lesson: N"},
		{"unclosed fence", head + "```go\n", "not closed"},
		{"bad behaviour", "---\nlesson: 1\nserver: dance\n---\n", `server is one of reply, echo`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("lessons/lesson.md", []byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestEveryConditionParses: each condition the package documents is
// accepted (and so usable in a lesson).
func TestEveryConditionParses(t *testing.T) {
	for _, expect := range []string{
		"wire SYN from=client", "wire DATA len=5", "wire DATA seq=1", "wire ACK ack=6", "wire ACK win=0",
		"wire ACK step=handshake-3/3", "wire FIN flags=F.", "wire ACK analysis=zero-window", "wire SYN ip=6",
		"server connection family=IPv6", "server connection node-remote=::ffff:127.0.0.1",
		"server connection port=ephemeral", "server close detail=reset", "wire DATA min=3",
	} {
		if _, err := ParseExpect(expect); err != nil {
			t.Errorf("%q: %v", expect, err)
		}
	}
	for _, behavior := range []string{"reply", "echo", "silent", "never-accept", "no-read", "slow-read", "lines"} {
		text := "---\nlesson: 1\ntitle: T\nserver: " + behavior + "\nhost: \"::\"\n---\n## S\n```js\nx\n```\n```go\ny\n```\n"
		if _, err := Parse("l.md", []byte(text)); err != nil {
			t.Errorf("server %s: %v", behavior, err)
		}
	}
}

// TestWithPort: with --port, the text and code name the port really used,
// and the original lesson is untouched.
func TestWithPort(t *testing.T) {
	all, err := Load(lessons.Files)
	if err != nil {
		t.Fatal(err)
	}
	moved := all[0].WithPort(5123)
	if moved.Server.Port != 5123 || !strings.Contains(moved.Steps[0].Go, `"127.0.0.1:5123"`) || !strings.Contains(moved.Steps[0].Node, "listen(5123") {
		t.Errorf("moved lesson: port %d, go %q", moved.Server.Port, moved.Steps[0].Go)
	}
	if strings.Contains(all[0].Steps[0].Go, "5123") || all[0].Server.Port != 4000 {
		t.Error("WithPort changed the original lesson")
	}
}

// TestEveryLessonMovesEveryPort: with --port, no text, code, question or
// hint of any lesson still names the lesson's own port or the closed port
// after it, and the lesson uses the new ones.
func TestEveryLessonMovesEveryPort(t *testing.T) {
	all, err := Load(lessons.Files)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		old := l.Ports()
		moved := l.WithPort(15000)
		if got := moved.Ports(); got[0] != 15000 || got[1] != 15001 {
			t.Errorf("%s: ports %v after --port 15000", l.File, got)
		}
		texts := []string{moved.Title, moved.Intro}
		for _, s := range moved.Steps {
			texts = append(texts, s.Title, s.Before, s.After, s.Node, s.Go, s.Hint)
			if s.Predict != nil {
				texts = append(texts, s.Predict.Question, s.Predict.Answer)
			}
		}
		swapBack := portSwapper(map[int]int{old[0]: -1, old[1]: -1})
		for _, text := range texts {
			if swapBack(text) != text {
				t.Errorf("%s still names port %d or %d after --port 15000: %q", l.File, old[0], old[1], text)
			}
		}
	}
	if got := portSwapper(map[int]int{4000: 5000})("4000 40001 14000 :4000/x"); got != "5000 40001 14000 :5000/x" {
		t.Errorf("portSwapper: %q", got)
	}
}
