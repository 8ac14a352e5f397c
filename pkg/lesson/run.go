package lesson

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/client"
	"github.com/tcp-playground/playground/pkg/server"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// DefaultCheckTimeout is how long a step waits for the events it expects.
// On loopback they come within milliseconds; the rest is room for a busy
// machine, and it only runs out when something is really missing.
const DefaultCheckTimeout = 5 * time.Second

// Options change how a lesson runs.
type Options struct {
	Auto         bool   // run every step without waiting for the learner
	Port         int    // 0: the lesson's own port
	Interface    string // capture interface; "": loopback
	CheckTimeout time.Duration
	// Opened, if set, is called once the capture is open: the moment
	// privileges can be dropped.
	Opened func() error
}

// Key is what the learner asked for at a prompt.
type Key int

const (
	KeyNext  Key = iota // Enter: go on
	KeyQuit             // q
	KeyBack             // b: the previous step again
	KeyRerun            // r: this step again
	KeyHint             // h
)

// UI is where a running lesson shows itself and asks the learner. Event is
// called from the timeline's goroutine, the others from the runner's: an
// implementation must be safe for that.
type UI interface {
	Lesson(l *Lesson)
	Step(n int, s *Step)
	// Ask waits for the learner at the start of a step; Auto never asks.
	Ask(ctx context.Context, s *Step) (Key, error)
	Predict(ctx context.Context, p *Predict) error
	Reveal(p *Predict)
	Hint(s *Step)
	Event(e timeline.Event) error
	Check(s *Step, e *Expect, ok bool)
	// TryItYourself keeps everything running until the learner is done.
	TryItYourself(ctx context.Context, addr netip.AddrPort) error
	Done(r Result)
}

// Result is how a lesson went.
type Result struct {
	Lesson  int
	Checks  int      // expectations checked
	Passed  int      // expectations seen
	Missing []string // "step title: expect text" of each one not seen
	Quit    bool     // the learner quit before the end
	Late    int      // events the timeline had to show out of order
}

// OK reports whether every check passed and the lesson was finished.
func (r Result) OK() bool { return !r.Quit && len(r.Missing) == 0 && r.Checks == r.Passed }

// ErrPortInUse: another program holds the lesson's port.
var ErrPortInUse = errors.New("port in use")

// Run runs a lesson: it opens the capture, starts the timeline, then steps
// through the lesson, driving the server and the client, and checks each
// step's expectations against the merged events.
func Run(ctx context.Context, l *Lesson, opts Options, ui UI) (Result, error) {
	if opts.CheckTimeout == 0 {
		opts.CheckTimeout = DefaultCheckTimeout
	}
	port := l.Server.Port
	if opts.Port != 0 {
		port = opts.Port
	}
	r := &runner{lesson: l, opts: opts, ui: ui, port: port, result: Result{Lesson: l.Number}}
	return r.run(ctx)
}

type runner struct {
	lesson *Lesson
	opts   Options
	ui     UI
	port   int
	result Result

	live   *timeline.Live
	check  checker
	server *server.Server
	client *client.Client
}

func (r *runner) run(ctx context.Context) (Result, error) {
	reader, err := capture.OpenLive(capture.LiveOptions{Interface: r.opts.Interface, Filter: fmt.Sprintf("tcp port %d", r.port)})
	if err != nil {
		return r.result, err
	}
	if r.opts.Opened != nil {
		if err := r.opts.Opened(); err != nil {
			reader.Close()
			return r.result, err
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	r.live = timeline.StartLive(reader, func(e timeline.Event) error {
		r.check.observe(e)
		return r.ui.Event(e)
	})
	go func() {
		select {
		case <-r.live.Failed():
			stop() // the capture or the screen failed: end the steps
		case <-runCtx.Done():
		}
	}()

	stepErr := r.steps(runCtx)

	// Close the programs first, so that their last events (close, FIN) are
	// captured and shown; then stop the capture and flush the timeline.
	r.closePrograms()
	r.settle(runCtx)
	liveErr := r.live.Stop()
	r.result.Late = r.live.Late()

	switch {
	case liveErr != nil:
		return r.result, liveErr
	case stepErr != nil:
		return r.result, stepErr
	}
	r.ui.Done(r.result)
	return r.result, ctx.Err()
}

// steps walks the lesson.
func (r *runner) steps(ctx context.Context) error {
	r.ui.Lesson(r.lesson)
	for i := 0; i < len(r.lesson.Steps); {
		step := &r.lesson.Steps[i]
		r.ui.Step(i+1, step)
		if !r.opts.Auto {
			key, err := r.ui.Ask(ctx, step)
			if err != nil {
				return err
			}
			switch key {
			case KeyQuit:
				r.result.Quit = true
				return nil
			case KeyBack:
				if i > 0 {
					i--
				}
				continue
			case KeyHint:
				r.ui.Hint(step)
				continue
			case KeyRerun:
				continue
			}
		}
		if step.Predict != nil {
			if err := r.ui.Predict(ctx, step.Predict); err != nil {
				return err
			}
		}
		if err := r.runStep(ctx, step); err != nil {
			return err
		}
		if step.Predict != nil {
			r.ui.Reveal(step.Predict)
		}
		i++
	}
	return nil
}

// runStep acts and checks one step.
func (r *runner) runStep(ctx context.Context, step *Step) error {
	done := r.check.start(step.Expects)
	for _, a := range step.Actions {
		if err := r.act(ctx, a); err != nil {
			return fmt.Errorf("step %q, %s: %w", step.Title, a.Verb, err)
		}
	}
	if len(step.Expects) > 0 {
		timer := time.NewTimer(r.opts.CheckTimeout)
		select {
		case <-done:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		timer.Stop()
	}
	// Let the timeline show this step's last events before the checks.
	r.settle(ctx)
	matched := r.check.finish()
	for i := range step.Expects {
		r.result.Checks++
		if matched[i] {
			r.result.Passed++
		} else {
			r.result.Missing = append(r.result.Missing, step.Title+": "+step.Expects[i].Text)
		}
		r.ui.Check(step, &step.Expects[i], matched[i])
	}
	return nil
}

// settle waits for the reorder window (and a little more), so that what
// has happened so far is on the screen.
func (r *runner) settle(ctx context.Context) {
	t := time.NewTimer(4 * timeline.DefaultReorderWindow)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (r *runner) serverAddr() string {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(r.port)).String()
}

// act runs one action against the real server and client.
func (r *runner) act(ctx context.Context, a Action) error {
	switch a.Verb {
	case "listen":
		if r.server != nil {
			// The learner went back: start over with a fresh server.
			r.closePrograms()
		}
		srv, err := server.Start(ctx, r.serverConfig(), func(e server.Event) {
			r.live.Add(ctx, timeline.ServerEvent(e))
		})
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%w: %d is taken by another program; choose another with --port", ErrPortInUse, r.port)
		}
		if err != nil {
			return err
		}
		r.server = srv
	case "dial":
		if r.server == nil {
			if err := r.act(ctx, Action{Verb: "listen"}); err != nil {
				return err
			}
		}
		if r.client != nil {
			r.client.Close()
		}
		c, err := client.Dial(ctx, r.serverAddr(), func(e client.Event) {
			r.live.Add(ctx, timeline.ClientEvent(e))
		})
		if err != nil {
			return err
		}
		r.client = c
	case "write", "read", "close", "close-write", "abort":
		if r.client == nil {
			// The learner went back to a step after the client closed:
			// connect again, as the step assumes.
			if err := r.act(ctx, Action{Verb: "dial"}); err != nil {
				return err
			}
		}
		return r.clientAction(ctx, a)
	case "wait":
		d, _ := time.ParseDuration(a.Arg)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	case "try-it-yourself":
		if r.opts.Auto {
			return nil
		}
		return r.ui.TryItYourself(ctx, netip.MustParseAddrPort(r.serverAddr()))
	default:
		return fmt.Errorf("unknown action %q", a.Verb)
	}
	return nil
}

func (r *runner) clientAction(ctx context.Context, a Action) error {
	switch a.Verb {
	case "write":
		return r.client.Write([]byte(a.Arg))
	case "read":
		readCtx, cancel := context.WithTimeout(ctx, r.opts.CheckTimeout)
		defer cancel()
		_, err := r.client.Read(readCtx, 64<<10)
		return err
	case "close":
		err := r.client.Close()
		r.client = nil
		return err
	case "close-write":
		return r.client.CloseWrite()
	case "abort":
		err := r.client.Abort()
		r.client = nil
		return err
	}
	return nil
}

func (r *runner) serverConfig() server.Config {
	cfg := server.Config{Addr: r.serverAddr()}
	switch r.lesson.Server.Behavior {
	case "reply":
		cfg.Behavior = server.Reply
		cfg.Reply = []byte(r.lesson.Server.Reply)
	case "echo":
		cfg.Behavior = server.Echo
	case "silent":
		cfg.Behavior = server.Silent
	case "never-accept":
		cfg.Behavior = server.NeverAccept
	case "no-read":
		cfg.Behavior = server.NoRead
	case "slow-read":
		cfg.Behavior = server.SlowRead
	}
	return cfg
}

func (r *runner) closePrograms() {
	if r.client != nil {
		r.client.Close()
		r.client = nil
	}
	if r.server != nil {
		r.server.Close()
		r.server = nil
	}
}

// checker matches the timeline's events against a step's expectations:
// ordered ones each after the previous one's match, "anytime" ones whenever.
type checker struct {
	mu      sync.Mutex
	expects []Expect
	matched []bool
	since   time.Time
	lastAt  time.Time // time of the event that matched the latest ordered expect
	done    chan struct{}
}

// start arms the checker for a step; the returned channel closes when all
// expectations are met.
func (c *checker) start(expects []Expect) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expects = expects
	c.matched = make([]bool, len(expects))
	c.since = time.Now()
	c.lastAt = time.Time{}
	c.done = make(chan struct{})
	if len(expects) == 0 {
		close(c.done)
	}
	return c.done
}

// finish disarms the checker and returns what was matched.
func (c *checker) finish() []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.matched
	c.expects, c.matched = nil, nil
	return m
}

func (c *checker) observe(e timeline.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expects == nil || e.Time.Before(c.since) {
		return // no step running, or an event of an earlier step
	}
	// Ordered expects are met one after the other: only the first unmet one
	// may match, and not with an event older than the previous match.
	nextOrdered := -1
	for i := range c.expects {
		if !c.expects[i].Anytime && !c.matched[i] {
			nextOrdered = i
			break
		}
	}
	if nextOrdered >= 0 && c.expects[nextOrdered].Matches(&e) && !e.Time.Before(c.lastAt) {
		c.matched[nextOrdered] = true
		c.lastAt = e.Time
	}
	all := true
	for i := range c.expects {
		if c.expects[i].Anytime && !c.matched[i] && c.expects[i].Matches(&e) {
			c.matched[i] = true
		}
		all = all && c.matched[i]
	}
	if all {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	}
}

// Matches reports whether an event satisfies the expectation.
func (x *Expect) Matches(e *timeline.Event) bool {
	if e.Source.String() != x.Source || (x.Kind != "*" && e.Kind() != x.Kind) {
		return false
	}
	for _, c := range x.Where {
		if !c.matches(e) {
			return false
		}
	}
	return true
}

func (c Cond) matches(e *timeline.Event) bool {
	n, _ := strconv.ParseUint(c.Value, 10, 32)
	switch c.Key {
	case "len":
		return uint64(e.PayloadLen()) == n
	}
	if e.Source != timeline.SourceWire {
		return false // the other conditions are about segments
	}
	s := &e.Segment
	switch c.Key {
	case "from":
		return s.FromClient == (c.Value == "client")
	case "seq":
		return uint64(s.Seq) == n
	case "ack":
		return s.Flags&capture.FlagACK != 0 && uint64(s.Ack) == n
	case "step":
		return stepName(s.Step) == c.Value
	case "flags":
		return s.Flags.String() == c.Value
	}
	return false
}

// stepName is a capture step as lessons write it: spaces become '-'.
func stepName(s capture.Step) string {
	b := []byte(s.String())
	for i := range b {
		if b[i] == ' ' {
			b[i] = '-'
		}
	}
	return string(b)
}
