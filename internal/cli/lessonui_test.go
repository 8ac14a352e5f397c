package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tcp-playground/playground/pkg/capture/live"
	"github.com/tcp-playground/playground/pkg/lesson"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// scriptedKeys is a keyboard for the tests: keys are typed when the test
// says so.
type scriptedKeys chan byte

func (k scriptedKeys) next(ctx context.Context) (byte, bool, error) {
	select {
	case b, ok := <-k:
		return b, ok, nil
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
}

// shows waits until the screen shows text n times.
func (b *syncBuffer) shows(t *testing.T, text string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(b.String(), text) < n {
		if time.Now().After(deadline) {
			t.Errorf("%q is not on the screen %d times:\n%s", text, n, b.String())
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const uiLesson = `---
lesson: 42
title: The terminal
reply: "Hello from server"
port: 4000
---

An introduction long enough to be wrapped at eighty columns, so that the wrapping of prose is exercised by this test as well.

## Listen

The server listens on port 4000, a promise made to the kernel.

` + "```js\nserver.listen(4000, \"127.0.0.1\", () => { console.log(\"a long line of Node.js code that is wide\"); });\n```\n```go\nln, err := net.Listen(\"tcp\", \"127.0.0.1:4000\") // and a long Go comment too\n```" + `

<!-- do: listen -->
<!-- expect: server listening -->

## Talk

The client says hello.

` + "```js\nsocket.write(\"hello\");\n```\n```go\nconn.Write([]byte(\"hello\"))\n```" + `

> **Hint:** count the bytes of the reply.

> **Predict:** How many bytes does the server answer with?

<!-- do: dial -->
<!-- do: write "hello" -->
<!-- do: read -->
<!-- expect: server data len=5 -->
<!-- expect: client read len=17 -->
<!-- expect-anytime: server connection -->

### What happened

> **Answer:** 17, "Hello from server".

The explanation comes only now.

## Yours

` + "```js\nx\n```\n```go\ny\n```" + `

<!-- do: wait-outside -->
<!-- do: try-it-yourself -->
<!-- expect: server data len=26 -->
`

// runUILesson runs uiLesson through the real engine and terminal UI on
// real sockets, without a capture (no root needed), with keys typed by
// script(screen, keys).
func runUILesson(t *testing.T, width int, script func(screen *syncBuffer, keys scriptedKeys)) (string, lesson.Result, error) {
	t.Helper()
	l, err := lesson.Parse("ui.md", []byte(uiLesson))
	if err != nil {
		t.Fatal(err)
	}
	l = l.WithPort(freePort(t))
	screen := &syncBuffer{}
	styles := timeline.NewStyles(false)
	newView := func(w io.Writer) timeline.Summarizer {
		v := timeline.NewLogView(w, styles, time.Time{})
		v.SetWidth(width)
		return v
	}
	ui := newTermUI(screen, newView, styles, width, false)
	session := startSession(nil, ui.screen)
	ctx, quit := context.WithCancelCause(context.Background())
	defer quit(nil)
	keys := make(scriptedKeys, 64)
	ui.readKeys(ctx, keys, quit)
	scriptDone := make(chan struct{})
	go func() {
		defer close(scriptDone)
		script(screen, keys)
	}()
	result, runErr := lesson.Run(ctx, l, lesson.Options{CheckTimeout: 3 * time.Second}, session, ui)
	if err := session.Stop(Env{Stderr: io.Discard}, false); err != nil {
		t.Fatal(err)
	}
	<-scriptDone
	return screen.String(), result, runErr
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// checkWidth fails for any line wider than width.
func checkWidth(t *testing.T, out string, width int) {
	t.Helper()
	for _, line := range strings.Split(ansi.ReplaceAllString(out, ""), "\n") {
		if n := utf8.RuneCountInString(line); n > width {
			t.Errorf("a line of %d columns on a %d-column terminal: %q", n, width, line)
		}
	}
}

// TestLessonUIKeys steps through a lesson the way a slow learner who
// presses every key does: b, r and h at each prompt, reading a while
// before each key, s at the learner's-client step.
func TestLessonUIKeys(t *testing.T) {
	out, result, err := runUILesson(t, 80, func(screen *syncBuffer, keys scriptedKeys) {
		screen.shows(t, "▶ Enter: run step 1", 1)
		keys <- 'h' // no hint at step 1: ignored
		keys <- 'b' // nothing to go back to: ignored
		keys <- 'r'
		screen.shows(t, "▶ Enter: run step 1", 2)
		time.Sleep(300 * time.Millisecond) // a learner reading
		keys <- '\n'
		screen.shows(t, "▶ Enter: run step 2", 1)
		keys <- 'h'
		screen.shows(t, "Hint: count the bytes", 1)
		keys <- 'b'
		screen.shows(t, "looking back: step 1, as it ran", 1)
		keys <- '\n'
		screen.shows(t, "? Predict:", 1)
		time.Sleep(300 * time.Millisecond)
		keys <- '\n'
		screen.shows(t, "▶ Enter: run step 3", 1)
		keys <- '\n'
		screen.shows(t, "This step waits for your connection", 1)
		keys <- 's'
		screen.shows(t, "In another terminal, type:", 1)
		keys <- '\n'
	})
	if err != nil {
		t.Fatal(err)
	}
	if !result.OK() || result.Checks != 5 {
		t.Errorf("result %+v\n%s", result, out)
	}
	plain := ansi.ReplaceAllString(out, "")
	for _, want := range []string{"Lesson 42 · The terminal", "Step 2/3 · Talk", "✓ server listening", "! Answer: 17", "The explanation comes only now.", "Lesson 42 done: all 5 checks passed"} {
		if !strings.Contains(plain, want) {
			t.Errorf("the screen does not show %q", want)
		}
	}
	// Nothing answers the prediction before it is asked.
	if q, a := strings.Index(plain, "? Predict:"), strings.Index(plain, "The explanation comes only now."); a < q {
		t.Errorf("the explanation shows before the question")
	}
	if n := strings.Count(plain, "server ● listening"); n != 2 {
		t.Errorf("listening shown %d times; want 2: once as it ran, once looking back", n)
	}
	checkWidth(t, out, 80)
}

// TestLessonUIQuit: q ends the lesson within a second at every kind of
// prompt and while a step waits.
func TestLessonUIQuit(t *testing.T) {
	for _, at := range []string{"▶ Enter: run step 1", "? Predict:", "This step waits for your connection"} {
		t.Run(at, func(t *testing.T) {
			var pressed time.Time
			out, result, err := runUILesson(t, 100, func(screen *syncBuffer, keys scriptedKeys) {
				for _, step := range []string{"▶ Enter: run step 1", "▶ Enter: run step 2", "? Predict:", "▶ Enter: run step 3", "This step waits for your connection"} {
					screen.shows(t, step, 1)
					if step == at {
						pressed = time.Now()
						keys <- 'q'
						return
					}
					keys <- '\n'
				}
			})
			if err != nil || !result.Quit {
				t.Fatalf("result %+v, err %v", result, err)
			}
			if d := time.Since(pressed); d > time.Second {
				t.Errorf("q took %v", d)
			}
			if !strings.Contains(out, "You left lesson 42 at step") {
				t.Errorf("no goodbye:\n%s", out)
			}
		})
	}
}

// TestLessonUIJSON: with --json the lesson writes only JSON lines, one per
// event and one per check.
func TestLessonUIJSON(t *testing.T) {
	l, err := lesson.Parse("ui.md", []byte(uiLesson))
	if err != nil {
		t.Fatal(err)
	}
	l = l.WithPort(freePort(t))
	var screen bytes.Buffer
	ui := newTermUI(&screen, func(w io.Writer) timeline.Summarizer { return timeline.NewJSONView(w) }, timeline.NewStyles(false), 80, true)
	session := startSession(nil, ui.screen)
	result, err := lesson.Run(context.Background(), l, lesson.Options{Auto: true, CheckTimeout: 3 * time.Second}, session, ui)
	if err := errors.Join(err, session.Stop(Env{Stderr: io.Discard}, false)); err != nil {
		t.Fatal(err)
	}
	if !result.OK() {
		t.Fatalf("%+v", result)
	}
	events := parseJSONLines(t, screen.String())
	checks := 0
	for _, e := range events {
		if e.Source == "lesson" && e.OK {
			checks++
		}
	}
	if checks != 5 {
		t.Errorf("%d check lines, want 5:\n%s", checks, screen.String())
	}
}

// TestLiveErrorSaysWhatToDo: a capture refused for want of root says how
// to get it.
func TestLiveErrorSaysWhatToDo(t *testing.T) {
	err := liveError(fmt.Errorf("%w on lo", errPermissionForTest()))
	if !strings.Contains(err.Error(), "run it with sudo") {
		t.Errorf("%v", err)
	}
	if _, err := net.Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Skip("something listens on port 1")
	}
}

func errPermissionForTest() error { return live.ErrPermission }
