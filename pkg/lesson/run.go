package lesson

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcp-playground/playground/pkg/client"
	"github.com/tcp-playground/playground/pkg/netlab"
	"github.com/tcp-playground/playground/pkg/server"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// DefaultCheckTimeout is how long a step waits for the events it expects.
// On loopback they come within milliseconds; the rest is room for a busy
// machine, and it only runs out when something is really missing.
const DefaultCheckTimeout = 5 * time.Second

// Options change how a lesson runs.
type Options struct {
	Auto         bool // run every step without waiting for the learner
	CheckTimeout time.Duration
	// Settle is how long to wait for the timeline to show what happened
	// before the checks are shown (default: 4 of the widest reorder
	// windows, the kernel lane's).
	Settle time.Duration
	// Lab is the network a lesson with `link: lab` runs in; such a lesson
	// does not run without one (ErrNoLab).
	Lab Lab
	// Node is the node command notes-server runs (default: node, from
	// PATH). Where it can't be found, that step's checks are not
	// checkable, and the lesson goes on.
	Node string
}

// Lab is what a lab lesson needs of pkg/netlab's *Lab: to make its sockets
// in the client's and the server's namespaces, and to set the link.
type Lab interface {
	InClient(f func() error) error
	InServer(f func() error) error
	SetLink(netlab.Link) error
}

// ErrNoLab: the lesson runs on a link it controls, and no lab was given.
var ErrNoLab = errors.New("this lesson needs the lab (two network namespaces and a link the lesson controls)")

// Session is the live timeline a lesson runs on: the command line opens
// the capture, drops privileges, opens the output files and starts the
// screen, then hands the running session to Run.
type Session interface {
	// Add puts a program's event on the timeline.
	Add(ctx context.Context, e timeline.Event)
	// Observe makes fn see every event of the timeline in time order,
	// from the timeline's goroutine, as the screen shows it.
	Observe(fn func(timeline.Event))
	// Failed is closed when the capture or the screen failed.
	Failed() <-chan struct{}
}

// LaneReporter is a Session that may run without some sources (the kernel
// lane needs BPF): Unavailable says why a source can't be seen, "" when it
// can. A check on such a source is shown as not checkable, not as failed.
type LaneReporter interface {
	Unavailable(source timeline.Source) string
}

// Outcome is how one check of a step went.
type Outcome uint8

const (
	Passed      Outcome = iota
	Failed              // its event was not seen (or, for expect-none, was)
	Uncheckable         // its source can't be seen here (Result.UncheckableWhy)
)

// Key is what the learner asked for at a step's prompt.
type Key int

const (
	KeyNext Key = iota // Enter: run this step
	KeyBack            // b: show the previous step again, as it ran
	KeyShow            // r: show this step's text again
	KeyHint            // h
)

// ErrQuit is the cause of a lesson's context when the learner pressed q:
// the lesson ends at once, wherever it was, as a quit rather than a failure.
var ErrQuit = errors.New("the learner quit")

// UI is where a running lesson shows itself and asks the learner. Its
// methods are called from the runner's goroutine. A UI that lets the
// learner quit at any moment cancels the context with cause ErrQuit.
type UI interface {
	Lesson(l *Lesson)
	// Step shows a step before it runs: its title, its setup and code.
	Step(n int, s *Step)
	// Ask waits for a key at a step's prompt (never called with Auto).
	Ask(ctx context.Context, n int, s *Step) (Key, error)
	// Hint shows the step's hint.
	Hint(s *Step)
	// Review shows an earlier step again, as it ran (b).
	Review(n int, s *Step)
	// Predict asks the question; with Auto it only shows it.
	Predict(ctx context.Context, p *Predict) error
	// Ran shows what a step's checks found, then its answer and its
	// explanation.
	Ran(n int, s *Step, outcomes []Outcome)
	// TryItYourself keeps everything running until the learner is done.
	TryItYourself(ctx context.Context, addr netip.AddrPort) error
	// WaitOutside asks the learner to connect with a client of their own
	// and waits until done closes (the step saw what it expects) or the
	// learner skips; skipped is true then, and the playground plays the
	// learner's part.
	WaitOutside(ctx context.Context, addr netip.AddrPort, done <-chan struct{}) (skipped bool, err error)
	Done(r Result)
}

// Result is how a lesson went.
type Result struct {
	Lesson  int
	Checks  int      // expectations checked
	Passed  int      // expectations seen
	Missing []string // "step title: expect text" of each one not seen
	Quit    bool     // the learner quit before the end
	// Uncheckable counts checks on a source this session can't see, and
	// UncheckableWhy says why; they are neither passed nor failed.
	Uncheckable    int
	UncheckableWhy string
}

// OK reports whether every check passed and the lesson was finished.
func (r Result) OK() bool { return !r.Quit && len(r.Missing) == 0 && r.Checks == r.Passed }

// ErrPortInUse: another program holds the lesson's port.
var ErrPortInUse = errors.New("port in use")

// Run steps through the lesson on a running session: it drives the server
// and the client, and checks each step's expectations against the
// timeline's events. It returns when the lesson ends, the learner quits
// (Result.Quit, no error), ctx is done or the session failed.
func Run(ctx context.Context, l *Lesson, opts Options, sess Session, ui UI) (Result, error) {
	if opts.CheckTimeout == 0 {
		opts.CheckTimeout = DefaultCheckTimeout
	}
	if opts.Settle == 0 {
		opts.Settle = 4 * timeline.KernelReorderWindow
	}
	if l.Lab && opts.Lab == nil {
		return Result{Lesson: l.Number}, ErrNoLab
	}
	r := &runner{lesson: l, opts: opts, ui: ui, sess: sess, port: l.Server.Port, result: Result{Lesson: l.Number}}
	sess.Observe(r.check.observe)

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go func() {
		select {
		case <-sess.Failed():
			stop(errSessionFailed) // the capture or the screen failed: end the steps
		case <-runCtx.Done():
		}
	}()

	stepErr := r.steps(runCtx)
	// Close the programs, so that their last events (close, FIN) reach
	// the timeline while the session still runs.
	r.closePrograms()
	switch cause := context.Cause(runCtx); {
	case errors.Is(cause, ErrQuit):
		r.result.Quit = true
		r.settle(context.Background()) // the last FINs on screen before the goodbye
	case ctx.Err() != nil:
		return r.result, ctx.Err() // Ctrl-C
	case errors.Is(cause, errSessionFailed):
		return r.result, errSessionFailed
	case stepErr != nil:
		return r.result, stepErr
	default:
		r.settle(ctx)
	}
	r.tally()
	ui.Done(r.result)
	return r.result, nil
}

// errSessionFailed: the session's capture or screen failed; the caller's
// session says why.
var errSessionFailed = errors.New("the live session failed")

type runner struct {
	lesson *Lesson
	opts   Options
	ui     UI
	sess   Session
	port   int
	result Result

	check  checker
	server *server.Server
	client *client.Client

	lastConn atomic.Uint64 // the server's latest connection, for server-close
	link     netlab.Link   // a lab lesson's link, as its steps set it
	checked  [][]Outcome   // each step's checks; nil for a step not run

	node *notesServer // the notes' server.js run by node (notes-server)
}

// steps walks the lesson. No step runs twice: b shows an earlier step as
// it ran, r shows this one's text again; a step only ever runs on the
// state the steps before it left, the one it was written for.
func (r *runner) steps(ctx context.Context) error {
	r.ui.Lesson(r.lesson)
	r.checked = make([][]Outcome, len(r.lesson.Steps))
	for i := range r.lesson.Steps {
		step := &r.lesson.Steps[i]
		r.ui.Step(i+1, step)
		if !r.opts.Auto {
			if err := r.prompt(ctx, i); err != nil {
				return err
			}
		}
		if step.Predict != nil {
			if err := r.ui.Predict(ctx, step.Predict); err != nil {
				return err
			}
		}
		outcomes, err := r.runStep(ctx, step)
		if err != nil {
			return err
		}
		r.checked[i] = outcomes
		r.ui.Ran(i+1, step, outcomes)
	}
	return nil
}

// prompt waits at step i until the learner runs it; b walks back through
// the steps already run, one further each time.
func (r *runner) prompt(ctx context.Context, i int) error {
	step := &r.lesson.Steps[i]
	back := i
	for {
		key, err := r.ui.Ask(ctx, i+1, step)
		if err != nil {
			return err
		}
		switch key {
		case KeyNext:
			return nil
		case KeyBack:
			if back > 0 {
				back--
			}
			if back < i {
				r.ui.Review(back+1, &r.lesson.Steps[back])
			}
		case KeyShow:
			back = i
			r.ui.Step(i+1, step)
		case KeyHint:
			r.ui.Hint(step)
		}
	}
}

// runStep acts and checks one step: an outcome per expectation.
func (r *runner) runStep(ctx context.Context, step *Step) ([]Outcome, error) {
	// Checks on a source this session can't see are not waited for.
	var checkable []Expect
	var index []int // checkable's place in step.Expects
	outcomes := make([]Outcome, len(step.Expects))
	stepWhy := r.stepUnavailable(step)
	for i, x := range step.Expects {
		why := stepWhy
		if why == "" {
			why = r.unavailable(x.Source)
		}
		if why != "" {
			outcomes[i] = Uncheckable
			r.result.UncheckableWhy = why
			continue
		}
		checkable, index = append(checkable, x), append(index, i)
	}
	done := r.check.start(checkable)
	for i := range step.Actions {
		a := &step.Actions[i]
		if err := a.def.run(r, ctx, a, done); err != nil {
			r.check.finish()
			return nil, fmt.Errorf("step %q, %s: %w", step.Title, a.Verb, err)
		}
	}
	positive, negative := r.check.waitsForSomething()
	if positive {
		if err := waitFor(ctx, done, r.opts.CheckTimeout); err != nil {
			r.check.finish()
			return nil, err
		}
	}
	if negative {
		if err := sleep(ctx, quietPeriod); err != nil {
			r.check.finish()
			return nil, err
		}
	}
	// Let the timeline show this step's last events before the checks.
	r.settle(ctx)
	matched := r.check.finish()
	for j, x := range checkable {
		outcomes[index[j]] = Failed
		if matched[j] != x.None { // an expect-none passes when not seen
			outcomes[index[j]] = Passed
		}
	}
	return outcomes, ctx.Err()
}

// unavailable says why the session can't see a source ("" if it can).
func (r *runner) unavailable(source timeline.Source) string {
	if lr, ok := r.sess.(LaneReporter); ok {
		return lr.Unavailable(source)
	}
	return ""
}

// tally sums up the checks of every step that ran.
func (r *runner) tally() {
	r.result.Checks, r.result.Passed, r.result.Missing, r.result.Uncheckable = 0, 0, nil, 0
	for i, outcomes := range r.checked {
		step := &r.lesson.Steps[i]
		for j, o := range outcomes {
			switch o {
			case Uncheckable:
				r.result.Uncheckable++
				continue
			case Passed:
				r.result.Passed++
			default:
				r.result.Missing = append(r.result.Missing, step.Title+": "+step.Expects[j].Display())
			}
			r.result.Checks++
		}
	}
}

// settle waits for the reorder window (and a little more), so that what
// has happened so far is on the screen.
func (r *runner) settle(ctx context.Context) { sleep(ctx, r.opts.Settle) }

// waitFor waits until done closes or d passes; only ctx ending is an error.
func waitFor(ctx context.Context, done <-chan struct{}, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// inServer makes sockets where the lesson's server lives: in the lab's
// server namespace for a lab lesson, here otherwise.
func (r *runner) inServer(f func() error) error {
	if r.lesson.Lab {
		return r.opts.Lab.InServer(f)
	}
	return f()
}

// inClient makes sockets where the lesson's client lives.
func (r *runner) inClient(f func() error) error {
	if r.lesson.Lab {
		return r.opts.Lab.InClient(f)
	}
	return f()
}

// host is the server's listen address.
func (r *runner) host() netip.Addr {
	if r.lesson.Lab {
		return netlab.ServerAddr()
	}
	if r.lesson.Server.Host == "" {
		return netip.MustParseAddr("127.0.0.1")
	}
	return netip.MustParseAddr(r.lesson.Server.Host)
}

// dialAddr is where the client connects: host picks the family; by
// default the server's own address (an IPv4 client for a dual-stack one).
func (r *runner) dialAddr(host string) netip.AddrPort {
	a := r.host()
	switch {
	case host != "":
		a = netip.MustParseAddr(host)
	case a.IsUnspecified():
		a = netip.MustParseAddr("127.0.0.1")
	}
	return netip.AddrPortFrom(a, uint16(r.port))
}

func (r *runner) serverConfig() server.Config {
	spec := r.lesson.Server
	cfg := server.Config{
		Addr:          netip.AddrPortFrom(r.host(), uint16(r.port)).String(),
		Behavior:      spec.Behavior,
		ReadDelay:     spec.ReadDelay,
		ReadSize:      spec.ReadSize,
		ReadInterval:  spec.ReadInterval,
		ReceiveBuffer: spec.ReceiveBuffer,
		Backlog:       spec.Backlog,
	}
	if spec.Behavior == server.Reply {
		cfg.Reply = []byte(spec.Reply)
	}
	if spec.HasReplyOnEOF {
		cfg.ReplyOnEOF = []byte(spec.ReplyOnEOF)
	}
	return cfg
}

func (r *runner) closePrograms() {
	if r.node != nil {
		r.node.stop()
		r.node = nil
	}
	if r.client != nil {
		r.client.Close()
		r.client = nil
	}
	if r.server != nil {
		r.server.Close()
		r.server = nil
	}
}

// The actions of actionDefs.

func (r *runner) actListen(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	r.closePrograms() // a fresh server, with no connection of an earlier one
	var srv *server.Server
	err := r.inServer(func() (err error) {
		srv, err = server.Start(ctx, r.serverConfig(), func(e server.Event) {
			if e.Kind == server.Connection {
				r.lastConn.Store(e.Conn)
			}
			r.sess.Add(ctx, timeline.ServerEvent(e))
		})
		return err
	})
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: %d is taken by another program; choose another with --port", ErrPortInUse, r.port)
	}
	if err != nil {
		return err
	}
	r.server = srv
	return nil
}

func (r *runner) ensureServer(ctx context.Context) error {
	if r.server != nil || r.node != nil {
		return nil
	}
	return r.actListen(ctx, nil, nil)
}

func (r *runner) actDial(ctx context.Context, a *Action, _ <-chan struct{}) error {
	if err := r.ensureServer(ctx); err != nil {
		return err
	}
	host := ""
	if a != nil {
		host = a.host
	}
	if r.client != nil {
		r.client.Close()
		r.client = nil
	}
	c, err := r.dial(ctx, r.dialAddr(host))
	if err != nil {
		return err
	}
	r.client = c
	return nil
}

// dial connects the lesson's client to addr, from the client's namespace
// in a lab lesson.
func (r *runner) dial(ctx context.Context, addr netip.AddrPort) (c *client.Client, err error) {
	err = r.inClient(func() (err error) {
		c, err = client.Dial(ctx, addr.String(), func(e client.Event) { r.sess.Add(ctx, timeline.ClientEvent(e)) })
		return err
	})
	return c, err
}

func (r *runner) actDialTimeout(ctx context.Context, a *Action, _ <-chan struct{}) error {
	if err := r.ensureServer(ctx); err != nil {
		return err
	}
	if r.client != nil {
		r.client.Close()
		r.client = nil
	}
	dialCtx, cancel := context.WithTimeout(ctx, a.duration)
	defer cancel()
	c, err := r.dial(dialCtx, r.dialAddr(""))
	if err != nil {
		// A timeout (or a refusal) is what the step shows: the client's
		// error event says which, and the checks judge it. Only the
		// lesson's own end (q, Ctrl-C) is an error.
		return ctx.Err()
	}
	r.client = c
	return nil
}

func (r *runner) actDialClosed(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	// Refused: the error is the lesson, not a failure.
	closed := netip.AddrPortFrom(r.dialAddr("").Addr(), uint16(ClosedPort(r.port)))
	c, err := r.dial(ctx, closed)
	if err == nil {
		c.Close()
		return fmt.Errorf("port %d should be closed, but a program listens there: choose another --port", ClosedPort(r.port))
	}
	return nil
}

// connected is the client the step acts on; a step that writes, reads or
// closes needs one.
func (r *runner) connected() (*client.Client, error) {
	if r.client == nil {
		return nil, errors.New("no client is connected: the lesson must dial first")
	}
	return r.client, nil
}

func (r *runner) actWrite(ctx context.Context, a *Action, _ <-chan struct{}) error {
	c, err := r.connected()
	if err != nil {
		return err
	}
	return c.Write([]byte(a.text))
}

func (r *runner) actWriteBytes(ctx context.Context, a *Action, _ <-chan struct{}) error {
	c, err := r.connected()
	if err != nil {
		return err
	}
	return c.Write(pattern(int(a.num)))
}

// blockedAfter is how long a write may wait before the receiver's window
// counts as closed; maxBlockedWrite bounds what write-until-blocked sends.
const (
	blockedAfter    = 500 * time.Millisecond
	maxBlockedWrite = 64 << 20
)

func (r *runner) actWriteUntilBlocked(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	c, err := r.connected()
	if err != nil {
		return err
	}
	// Write until a write waits longer than blockedAfter: the server's
	// kernel is no longer taking data, its window is closed.
	chunk := pattern(64 << 10)
	for sent := 0; sent < maxBlockedWrite; {
		wctx, cancel := context.WithTimeout(ctx, blockedAfter)
		n, err := c.WriteContext(wctx, chunk)
		cancel()
		sent += n
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("sent %d bytes and the window never closed", maxBlockedWrite)
}

func (r *runner) actRead(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	c, err := r.connected()
	if err != nil {
		return err
	}
	readCtx, cancel := context.WithTimeout(ctx, r.opts.CheckTimeout)
	defer cancel()
	_, err = c.Read(readCtx, 64<<10)
	if readEnded(err) && ctx.Err() == nil {
		return nil // the timeline shows how the read ended; the checks judge it
	}
	return err
}

func (r *runner) actReadAll(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	c, err := r.connected()
	if err != nil {
		return err
	}
	readCtx, cancel := context.WithTimeout(ctx, r.opts.CheckTimeout)
	defer cancel()
	for {
		_, err := c.Read(readCtx, 64<<10)
		if readEnded(err) && ctx.Err() == nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (r *runner) actClose(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	c, err := r.connected()
	if err != nil {
		return err
	}
	r.client = nil
	return c.Close()
}

func (r *runner) actCloseWrite(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	c, err := r.connected()
	if err != nil {
		return err
	}
	return c.CloseWrite()
}

func (r *runner) actAbort(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	c, err := r.connected()
	if err != nil {
		return err
	}
	r.client = nil
	return c.Abort()
}

func (r *runner) actWait(ctx context.Context, a *Action, _ <-chan struct{}) error {
	return sleep(ctx, a.duration)
}

func (r *runner) actSetReply(ctx context.Context, a *Action, _ <-chan struct{}) error {
	if r.server == nil {
		return errors.New("no server: the lesson must listen first")
	}
	r.server.SetReply([]byte(a.text))
	return nil
}

func (r *runner) actServerClose(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	if r.server == nil {
		return errors.New("no server: the lesson must listen first")
	}
	return r.server.CloseConn(r.lastConn.Load())
}

func (r *runner) actServerAbort(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	if r.server == nil {
		return errors.New("no server: the lesson must listen first")
	}
	return r.server.AbortConn(r.lastConn.Load())
}

func (r *runner) actWaitOutside(ctx context.Context, _ *Action, done <-chan struct{}) error {
	if err := r.ensureServer(ctx); err != nil {
		return err
	}
	if !r.opts.Auto {
		skipped, err := r.ui.WaitOutside(ctx, r.dialAddr(""), done)
		if err != nil || !skipped {
			return err
		}
	}
	return r.playTheLearner(ctx)
}

// playTheLearner does what a learner's nc would: connect, send a line,
// read the reply, close.
func (r *runner) playTheLearner(ctx context.Context) error {
	if err := r.actDial(ctx, nil, nil); err != nil {
		return err
	}
	if err := r.actWrite(ctx, &Action{value: value{text: "hello from the playground\n"}}, nil); err != nil {
		return err
	}
	if err := r.actRead(ctx, nil, nil); err != nil {
		return err
	}
	return r.actClose(ctx, nil, nil)
}

// setLink sets a lab lesson's link as r.link now says. A rule counts its
// segments from the moment it is set.
func (r *runner) setLink() error {
	if !r.lesson.Lab {
		return errors.New("only a lesson with `link: lab` has a link to set")
	}
	return r.opts.Lab.SetLink(r.link)
}

func (r *runner) actLinkDelay(ctx context.Context, a *Action, _ <-chan struct{}) error {
	r.link.ClientToServer.Delay, r.link.ServerToClient.Delay = a.duration, a.duration
	return r.setLink()
}

func (r *runner) actLinkDropSYN(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	r.link.Rules = []netlab.Rule{netlab.DropAll(netlab.ClientToServer, netlab.MatchSYN)}
	return r.setLink()
}

func (r *runner) actLinkDropData(ctx context.Context, a *Action, _ <-chan struct{}) error {
	if a.num == 0 {
		return errors.New("link-drop-data counts from 1")
	}
	r.link.Rules = []netlab.Rule{netlab.DropNth(netlab.ClientToServer, netlab.MatchData, int(a.num))}
	return r.setLink()
}

func (r *runner) actLinkClear(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	r.link = netlab.Link{}
	return r.setLink()
}

func (r *runner) actTryItYourself(ctx context.Context, _ *Action, _ <-chan struct{}) error {
	if r.opts.Auto {
		return nil
	}
	return r.ui.TryItYourself(ctx, r.dialAddr(""))
}

// readEnded reports whether a read ended the way a lesson may show: the
// server closed (EOF) or reset, or nothing came in time. The read event
// says which; the step's checks judge whether that was expected.
func readEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, context.DeadlineExceeded)
}

// pattern is n bytes of readable text, so previews of big writes make
// sense. It holds no newline: a server that answers lines (lesson 8) reads
// it without answering, so what it does does not depend on timing.
func pattern(n int) []byte {
	const line = "the quick brown fox jumps over the lazy dog "
	b := make([]byte, n)
	for i := range b {
		b[i] = line[i%len(line)]
	}
	return b
}
