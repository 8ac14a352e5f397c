package lesson

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/timeline"
)

// programSession is a Session of the programs' events alone: the real
// timeline (merger, linker) with no capture, so the engine runs without
// the privileges a capture needs.
type programSession struct {
	live *timeline.Live
	mu   sync.Mutex
	obs  []func(timeline.Event)
	seen []timeline.Event
}

func startProgramSession(t *testing.T) *programSession {
	s := &programSession{}
	s.live = timeline.StartLive(nil, func(e timeline.Event) error {
		s.mu.Lock()
		obs := s.obs
		s.seen = append(s.seen, e)
		s.mu.Unlock()
		for _, fn := range obs {
			fn(e)
		}
		return nil
	}, nil)
	t.Cleanup(func() { s.live.Stop() })
	return s
}

func (s *programSession) Add(ctx context.Context, e timeline.Event) { s.live.Add(ctx, e) }
func (s *programSession) Failed() <-chan struct{}                   { return s.live.Failed() }
func (s *programSession) Observe(fn func(timeline.Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.obs = append(s.obs, fn)
}

func (s *programSession) kinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.seen {
		out = append(out, e.Source.String()+" "+e.Kind())
	}
	return out
}

// scriptUI answers prompts from a script of keys and records what the
// engine asked it to show.
type scriptUI struct {
	keys     []Key
	calls    []string
	quitAt   string // a call after which the learner presses q
	quit     context.CancelCauseFunc
	skip     bool // WaitOutside: the learner presses s
	result   Result
	finished bool
}

func (u *scriptUI) record(format string, a ...any) {
	call := fmt.Sprintf(format, a...)
	u.calls = append(u.calls, call)
	if call == u.quitAt && u.quit != nil {
		u.quit(ErrQuit)
	}
}

func (u *scriptUI) Lesson(l *Lesson)    { u.record("lesson %d", l.Number) }
func (u *scriptUI) Step(n int, s *Step) { u.record("step %d", n) }
func (u *scriptUI) Ask(ctx context.Context, n int, s *Step) (Key, error) {
	u.record("ask %d", n)
	if err := context.Cause(ctx); ctx.Err() != nil {
		return KeyNext, err
	}
	if len(u.keys) == 0 {
		return KeyNext, nil
	}
	k := u.keys[0]
	u.keys = u.keys[1:]
	return k, nil
}
func (u *scriptUI) Hint(s *Step)          { u.record("hint %s", s.Hint) }
func (u *scriptUI) Review(n int, s *Step) { u.record("review %d", n) }
func (u *scriptUI) Predict(ctx context.Context, p *Predict) error {
	u.record("predict")
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}
func (u *scriptUI) Ran(n int, s *Step, outcomes []Outcome) {
	var marks []string
	for _, o := range outcomes {
		marks = append(marks, map[Outcome]string{Passed: "✓", Failed: "✗", Uncheckable: "–"}[o])
	}
	u.record("ran %d %s", n, strings.Join(marks, ""))
}
func (u *scriptUI) TryItYourself(ctx context.Context, addr netip.AddrPort) error {
	u.record("try %s", addr.Addr())
	return nil
}
func (u *scriptUI) WaitOutside(ctx context.Context, addr netip.AddrPort, done <-chan struct{}) (bool, error) {
	u.record("outside")
	if u.skip {
		return true, nil
	}
	select {
	case <-done:
		return false, nil
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
}
func (u *scriptUI) Done(r Result) { u.result, u.finished = r, true; u.record("done") }

// freePort is a port where nothing listens now, with the one after it.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if next, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ClosedPort(port))); err == nil {
			next.Close()
			return port
		}
	}
	t.Fatal("no free pair of ports")
	return 0
}

const testLesson = `---
lesson: 42
title: The engine
reply: "Hello from server"
---

Intro.

## Listen

Before.

` + "```js\nserver.listen(PORT)\n```\n```go\nnet.Listen(\"tcp\", \":PORT\")\n```" + `

<!-- do: listen -->
<!-- expect: server listening -->

## Talk

Before talking.

` + "```js\nx\n```\n```go\ny\n```" + `

> **Hint:** the reply is 17 bytes.

> **Predict:** How many bytes come back?

<!-- do: dial -->
<!-- do: write "hello" -->
<!-- do: read -->
<!-- expect-anytime: client connected -->
<!-- expect: server connection port=ephemeral family=IPv4 node-remote=127.0.0.1 -->
<!-- expect: server data len=5 -->
<!-- expect-anytime: server write len=17 -->
<!-- expect: client read len=17 ip=4 -->
<!-- expect-none: server error -->

### What happened

> **Answer:** 17: "Hello from server".

After.

## Close

` + "```js\nx\n```\n```go\ny\n```" + `

<!-- do: set-reply "bye" -->
<!-- do: close -->
<!-- do: wait 10ms -->
<!-- expect-anytime: client close -->
<!-- expect-anytime: server close detail=peer -->

## Yours

` + "```js\nx\n```\n```go\ny\n```" + `

<!-- do: wait-outside -->
<!-- do: try-it-yourself -->
<!-- expect: server connection -->
<!-- expect: server data len=26 -->
`

func parseTestLesson(t *testing.T, port int) *Lesson {
	t.Helper()
	l, err := Parse("engine.md", []byte(strings.ReplaceAll(testLesson, "PORT", "4000")))
	if err != nil {
		t.Fatal(err)
	}
	return l.WithPort(port)
}

func fastOptions(auto bool) Options {
	return Options{Auto: auto, CheckTimeout: 3 * time.Second, Settle: 20 * time.Millisecond}
}

// TestEngineAuto runs a lesson through the engine on real sockets, with
// no capture: every step once, checks from the programs' events.
func TestEngineAuto(t *testing.T) {
	port := freePort(t)
	l := parseTestLesson(t, port)
	if l.Steps[0].Go != fmt.Sprintf("net.Listen(\"tcp\", \":%d\")\n", port) {
		t.Errorf("WithPort did not move the code: %q", l.Steps[0].Go)
	}
	sess := startProgramSession(t)
	ui := &scriptUI{}
	r, err := Run(context.Background(), l, fastOptions(true), sess, ui)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Checks != 11 || r.Passed != 11 {
		t.Fatalf("result %+v; calls %v; events %v", r, ui.calls, sess.kinds())
	}
	want := "lesson 42|step 1|ran 1 ✓|step 2|predict|ran 2 ✓✓✓✓✓✓|step 3|ran 3 ✓✓|step 4|ran 4 ✓✓|done"
	if got := strings.Join(ui.calls, "|"); got != want {
		t.Errorf("calls\n got %s\nwant %s", got, want)
	}
}

// TestEngineKeys: b shows earlier steps as they ran (never runs them
// again), r shows the step again, h its hint; a step runs once whatever
// the keys, and s lets the playground play the learner's client.
func TestEngineKeys(t *testing.T) {
	port := freePort(t)
	l := parseTestLesson(t, port)
	sess := startProgramSession(t)
	ui := &scriptUI{skip: true, keys: []Key{
		KeyBack, KeyNext, // step 1: nothing to go back to
		KeyHint, KeyShow, KeyNext, // step 2
		KeyBack, KeyBack, KeyBack, KeyShow, KeyNext, // step 3: back to 2, to 1, stays at 1
		KeyNext,
	}}
	r, err := Run(context.Background(), l, fastOptions(false), sess, ui)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Checks != 11 {
		t.Fatalf("result %+v; calls %v", r, ui.calls)
	}
	want := "lesson 42|step 1|ask 1|ask 1|ran 1 ✓|" +
		"step 2|ask 2|hint the reply is 17 bytes.|ask 2|step 2|ask 2|predict|ran 2 ✓✓✓✓✓✓|" +
		"step 3|ask 3|review 2|ask 3|review 1|ask 3|review 1|ask 3|step 3|ask 3|ran 3 ✓✓|" +
		"step 4|ask 4|outside|try 127.0.0.1|ran 4 ✓✓|done"
	if got := strings.Join(ui.calls, "|"); got != want {
		t.Errorf("calls\n got %s\nwant %s", got, want)
	}
	if n := strings.Count(strings.Join(sess.kinds(), ","), "server listening"); n != 1 {
		t.Errorf("the server listened %d times, want once: no step runs twice", n)
	}
}

// TestEngineQuit: q ends the lesson at once, wherever the learner is, as
// a quit (no error), with the checks of the steps that ran.
func TestEngineQuit(t *testing.T) {
	for _, at := range []string{"ask 1", "predict", "step 3", "outside"} {
		t.Run(at, func(t *testing.T) {
			l := parseTestLesson(t, freePort(t))
			sess := startProgramSession(t)
			ctx, quit := context.WithCancelCause(context.Background())
			defer quit(nil)
			ui := &scriptUI{quitAt: at, quit: quit}
			start := time.Now()
			r, err := Run(ctx, l, fastOptions(false), sess, ui)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Quit || !ui.finished || r.OK() {
				t.Errorf("result %+v, done %v; want a quit", r, ui.finished)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("quitting took %v", d)
			}
		})
	}
}

// TestEngineWaitsForTheLearner: wait-outside ends when the learner's own
// client did what the step expects.
func TestEngineWaitsForTheLearner(t *testing.T) {
	port := freePort(t)
	l := parseTestLesson(t, port)
	l.Steps = l.Steps[3:] // only "Yours": it listens by itself
	sess := startProgramSession(t)
	ui := &scriptUI{}
	go func() {
		for range 100 {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			c.Write([]byte("hello from the playground\n"))
			c.Close()
			return
		}
	}()
	r, err := Run(context.Background(), l, fastOptions(false), sess, ui)
	if err != nil || !r.OK() {
		t.Fatalf("result %+v, err %v, calls %v", r, err, ui.calls)
	}
}

// TestEngineFailures: a check not met is reported, not fatal; Ctrl-C is
// an error; a port in use says so; an action without its client says so.
func TestEngineFailures(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		l := parseTestLesson(t, freePort(t))
		l.Steps = l.Steps[:1]
		x, _ := ParseExpect("server connection")
		l.Steps[0].Expects = append(l.Steps[0].Expects, x)
		opts := fastOptions(true)
		opts.CheckTimeout = 100 * time.Millisecond
		r, err := Run(context.Background(), l, opts, startProgramSession(t), &scriptUI{})
		if err != nil || r.OK() || r.Passed != 1 || len(r.Missing) != 1 || r.Missing[0] != "Listen: server connection" {
			t.Errorf("result %+v, err %v", r, err)
		}
	})
	t.Run("ctrl-c", func(t *testing.T) {
		l := parseTestLesson(t, freePort(t))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Run(ctx, l, fastOptions(true), startProgramSession(t), &scriptUI{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		l := parseTestLesson(t, ln.Addr().(*net.TCPAddr).Port)
		_, err = Run(context.Background(), l, fastOptions(true), startProgramSession(t), &scriptUI{})
		if !errors.Is(err, ErrPortInUse) {
			t.Errorf("err %v, want ErrPortInUse", err)
		}
	})
	t.Run("no client", func(t *testing.T) {
		l := parseTestLesson(t, freePort(t))
		l.Steps = l.Steps[2:3] // close, without a dial
		a, _ := ParseAction("close")
		l.Steps[0].Actions = []Action{a}
		_, err := Run(context.Background(), l, fastOptions(true), startProgramSession(t), &scriptUI{})
		if err == nil || !strings.Contains(err.Error(), "no client is connected") {
			t.Errorf("err %v", err)
		}
	})
}

// TestEngineEveryAction runs the remaining actions on real sockets.
func TestEngineEveryAction(t *testing.T) {
	const code = "```js\nx\n```\n```go\ny\n```\n"
	tests := []struct {
		name, text string
		checks     int
	}{
		{"echo", "---\nlesson: 1\ntitle: T\nserver: echo\nport: 4000\n---\n## S\n" + code +
			"<!-- do: dial-closed -->\n<!-- do: dial -->\n<!-- do: write-bytes 1000 -->\n<!-- do: close-write -->\n<!-- do: read-all -->\n" +
			"<!-- expect-anytime: client error detail=refused -->\n<!-- expect-anytime: server data min=1 -->\n<!-- expect-anytime: client half-close -->\n" +
			"## T\n" + code + "<!-- do: dial -->\n<!-- do: write \"x\" -->\n<!-- do: read -->\n<!-- do: server-close -->\n<!-- do: read -->\n<!-- do: abort -->\n" +
			"<!-- expect-anytime: server close detail=closed-by-server -->\n<!-- expect-anytime: client abort -->\n" +
			"## U\n" + code + "<!-- do: dial -->\n<!-- do: write \"y\" -->\n<!-- do: read -->\n<!-- do: server-abort -->\n<!-- do: read -->\n<!-- do: close -->\n" +
			"<!-- expect-anytime: server close detail=aborted -->\n<!-- expect-anytime: client read detail=reset -->\n", 7},
		{"no-read", "---\nlesson: 1\ntitle: T\nserver: no-read\nreceive-buffer: 4096\n---\n## S\n" + code +
			"<!-- do: dial -->\n<!-- do: write-until-blocked -->\n<!-- do: abort -->\n<!-- expect-anytime: client write min=2 -->\n<!-- expect-none: server data -->\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse("l.md", []byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			l = l.WithPort(freePort(t))
			sess := startProgramSession(t)
			r, err := Run(context.Background(), l, fastOptions(true), sess, &scriptUI{})
			if err != nil || !r.OK() || r.Checks != tt.checks {
				t.Fatalf("result %+v, err %v; events %v", r, err, sess.kinds())
			}
		})
	}
}

// noKernel is a session without the kernel lane.
type noKernel struct{ *programSession }

func (noKernel) Unavailable(src timeline.Source) string {
	if src == timeline.SourceKernel {
		return "no BPF here"
	}
	return ""
}

// TestKernelChecksWithoutTheLane: where the kernel lane can't run, its
// checks are not checkable (not failures); where it runs, a missing kernel
// event fails like any other.
func TestKernelChecksWithoutTheLane(t *testing.T) {
	text := "---\nlesson: 1\ntitle: T\n---\n## S\n```js\nx\n```\n```go\ny\n```\n" +
		"<!-- do: listen -->\n<!-- expect: server listening -->\n<!-- expect: kernel state side=server new=LISTEN -->\n"
	l, err := Parse("l.md", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOptions(true)
	opts.CheckTimeout = 200 * time.Millisecond

	ui := &scriptUI{}
	r, err := Run(context.Background(), l.WithPort(freePort(t)), opts, noKernel{startProgramSession(t)}, ui)
	if err != nil || !r.OK() || r.Checks != 1 || r.Uncheckable != 1 || r.UncheckableWhy != "no BPF here" {
		t.Errorf("without the lane: %+v, %v", r, err)
	}
	if got := strings.Join(ui.calls, "|"); !strings.Contains(got, "ran 1 ✓–") {
		t.Errorf("calls %s", got)
	}

	r, err = Run(context.Background(), l.WithPort(freePort(t)), opts, startProgramSession(t), &scriptUI{})
	if err != nil || r.OK() || r.Checks != 2 || r.Uncheckable != 0 || len(r.Missing) != 1 {
		t.Errorf("with a lane that saw nothing: %+v, %v", r, err)
	}
}

// TestNotesServerWithoutNode: where node is missing, a notes-server step's
// checks are not checkable, whatever their source, and the lesson goes on
// as before it.
func TestNotesServerWithoutNode(t *testing.T) {
	text := "---\nlesson: 1\ntitle: T\n---\n## S\n```js\nx\n```\n```go\ny\n```\n" +
		"<!-- do: listen -->\n<!-- expect: server listening -->\n" +
		"## Node\n```js\nx\n```\n```go\ny\n```\n" +
		"<!-- do: notes-server -->\n<!-- expect: process accept comm=node -->\n<!-- expect: wire DATA from=server len=17 -->\n"
	l, err := Parse("l.md", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOptions(true)
	opts.Node = filepath.Join(t.TempDir(), "no-node-here")
	ui := &scriptUI{}
	r, err := Run(context.Background(), l.WithPort(freePort(t)), opts, startProgramSession(t), ui)
	if err != nil || !r.OK() || r.Checks != 1 || r.Uncheckable != 2 || !strings.Contains(r.UncheckableWhy, "node is not installed") {
		t.Errorf("without node: %+v, %v", r, err)
	}
	if got := strings.Join(ui.calls, "|"); !strings.Contains(got, "ran 2 ––") {
		t.Errorf("calls %s", got)
	}
}
