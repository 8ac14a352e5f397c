package lesson

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/gopacket/layers"

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
	// privileges can be dropped (and files created as the learner).
	Opened func(linkType layers.LinkType) error
	// Frames, if set, gets the raw frame of every captured segment, from
	// the capture's goroutine (to write them to a file).
	Frames timeline.FrameFunc
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
	r := &runner{lesson: l, opts: opts, ui: ui, port: port, result: Result{Lesson: l.Number}, checked: map[*Step][]bool{}}
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

	lastConn atomic.Uint64    // the server's latest connection, for server-close
	checked  map[*Step][]bool // each step's checks, as it ran last
}

func (r *runner) run(ctx context.Context) (Result, error) {
	// The lesson's port, and the one next to it where nothing listens (the
	// refused-connection step dials it).
	filter := fmt.Sprintf("tcp port %d or tcp port %d", r.port, r.closedPort())
	reader, err := capture.OpenLive(capture.LiveOptions{Interface: r.opts.Interface, Filter: filter})
	if err != nil {
		return r.result, err
	}
	if r.opts.Opened != nil {
		if err := r.opts.Opened(reader.LinkType()); err != nil {
			reader.Close()
			return r.result, err
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	r.live = timeline.StartLive(reader, func(e timeline.Event) error {
		r.check.observe(e)
		return r.ui.Event(e)
	}, r.opts.Frames)
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
	r.tally()
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
		if err := r.act(ctx, a, done); err != nil {
			return fmt.Errorf("step %q, %s: %w", step.Title, a.Verb, err)
		}
	}
	positive, negative := r.check.waitsForSomething()
	if positive {
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
	if negative {
		if err := sleep(ctx, quietPeriod); err != nil {
			return err
		}
	}
	// Let the timeline show this step's last events before the checks.
	r.settle(ctx)
	matched := r.check.finish()
	passed := make([]bool, len(step.Expects))
	for i := range step.Expects {
		passed[i] = matched[i] != step.Expects[i].None // an expect-none passes when not seen
		r.ui.Check(step, &step.Expects[i], passed[i])
	}
	r.checked[step] = passed // a step run again (b, r) counts once, as it went last
	return nil
}

// tally sums up the checks of every step, as each went last.
func (r *runner) tally() {
	r.result.Checks, r.result.Passed, r.result.Missing = 0, 0, nil
	for i := range r.lesson.Steps {
		step := &r.lesson.Steps[i]
		for j, ok := range r.checked[step] {
			r.result.Checks++
			if ok {
				r.result.Passed++
			} else {
				r.result.Missing = append(r.result.Missing, step.Title+": "+step.Expects[j].Display())
			}
		}
	}
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

// listenAddr is where the server listens; dialAddr where the client
// connects (host picks the family; the server's own host by default).
func (r *runner) listenAddr() string {
	return netip.AddrPortFrom(r.host(), uint16(r.port)).String()
}

func (r *runner) host() netip.Addr {
	if r.lesson.Server.Host == "" {
		return netip.MustParseAddr("127.0.0.1")
	}
	return netip.MustParseAddr(r.lesson.Server.Host)
}

func (r *runner) dialAddr(host string) netip.AddrPort {
	a := r.host()
	switch {
	case host != "":
		a = netip.MustParseAddr(host)
	case a.IsUnspecified():
		a = netip.MustParseAddr("127.0.0.1") // a dual-stack server: an IPv4 client by default
	}
	return netip.AddrPortFrom(a, uint16(r.port))
}

// closedPort is a port where nothing listens: the lesson's port + 1.
func (r *runner) closedPort() int {
	if r.port == 65535 {
		return r.port - 1
	}
	return r.port + 1
}

// act runs one action against the real server and client; done closes
// when the step has seen everything it expects.
func (r *runner) act(ctx context.Context, a Action, done <-chan struct{}) error {
	switch a.Verb {
	case "listen":
		if r.server != nil {
			// The learner went back: start over with a fresh server.
			r.closePrograms()
		}
		srv, err := server.Start(ctx, r.serverConfig(), func(e server.Event) {
			if e.Kind == server.Connection {
				r.lastConn.Store(e.Conn)
			}
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
			if err := r.act(ctx, Action{Verb: "listen"}, done); err != nil {
				return err
			}
		}
		return r.dial(ctx, r.dialAddr(a.Arg).String())
	case "dial-closed":
		// Refused: the error is the lesson, not a failure.
		closed := netip.AddrPortFrom(r.dialAddr("").Addr(), uint16(r.closedPort()))
		c, err := client.Dial(ctx, closed.String(), func(e client.Event) { r.live.Add(ctx, timeline.ClientEvent(e)) })
		if err == nil {
			c.Close()
			return fmt.Errorf("port %d should be closed, but a program listens there: choose another --port", r.closedPort())
		}
	case "write", "write-bytes", "write-until-blocked", "read", "read-all", "close", "close-write", "abort":
		if r.client == nil {
			// The learner went back to a step after the client closed:
			// connect again, as the step assumes.
			if err := r.act(ctx, Action{Verb: "dial"}, done); err != nil {
				return err
			}
		}
		return r.clientAction(ctx, a)
	case "set-reply":
		if r.server != nil {
			r.server.SetReply([]byte(a.Arg))
		}
	case "server-close", "server-abort":
		if r.server == nil {
			return errors.New("no server: the lesson must listen first")
		}
		id := r.lastConn.Load()
		if a.Verb == "server-abort" {
			return r.server.AbortConn(id)
		}
		return r.server.CloseConn(id)
	case "wait":
		d, _ := time.ParseDuration(a.Arg)
		return sleep(ctx, d)
	case "wait-outside":
		if r.server == nil {
			if err := r.act(ctx, Action{Verb: "listen"}, done); err != nil {
				return err
			}
		}
		if !r.opts.Auto {
			skipped, err := r.ui.WaitOutside(ctx, r.dialAddr(""), done)
			if err != nil || !skipped {
				return err
			}
		}
		return r.playTheLearner(ctx)
	case "try-it-yourself":
		if r.opts.Auto {
			return nil
		}
		return r.ui.TryItYourself(ctx, r.dialAddr(""))
	default:
		return fmt.Errorf("unknown action %q", a.Verb)
	}
	return nil
}

func (r *runner) dial(ctx context.Context, addr string) error {
	if r.client != nil {
		r.client.Close()
	}
	c, err := client.Dial(ctx, addr, func(e client.Event) {
		r.live.Add(ctx, timeline.ClientEvent(e))
	})
	if err != nil {
		return err
	}
	r.client = c
	return nil
}

// playTheLearner does what a learner's nc would: connect, send a line,
// read the reply, close.
func (r *runner) playTheLearner(ctx context.Context) error {
	for _, a := range []Action{{Verb: "dial"}, {Verb: "write", Arg: "hello from the playground\n"}, {Verb: "read"}, {Verb: "close"}} {
		if err := r.act(ctx, a, nil); err != nil {
			return err
		}
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

// blockedAfter is how long a write may wait before the receiver's window
// counts as closed; maxBlockedWrite bounds what write-until-blocked sends.
const (
	blockedAfter    = 500 * time.Millisecond
	maxBlockedWrite = 64 << 20
)

func (r *runner) clientAction(ctx context.Context, a Action) error {
	switch a.Verb {
	case "write":
		return r.client.Write([]byte(a.Arg))
	case "write-bytes":
		n, _ := strconv.Atoi(a.Arg)
		return r.client.Write(pattern(n))
	case "write-until-blocked":
		// Write until a write waits longer than blockedAfter: the server's
		// kernel is no longer taking data, its window is closed.
		chunk := pattern(64 << 10)
		for sent := 0; sent < maxBlockedWrite; {
			wctx, cancel := context.WithTimeout(ctx, blockedAfter)
			n, err := r.client.WriteContext(wctx, chunk)
			cancel()
			sent += n
			if errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			if err != nil {
				return err
			}
		}
		return fmt.Errorf("sent %d bytes and the window never closed", maxBlockedWrite)
	case "read":
		readCtx, cancel := context.WithTimeout(ctx, r.opts.CheckTimeout)
		defer cancel()
		_, err := r.client.Read(readCtx, 64<<10)
		if readEnded(err) {
			return nil // the timeline shows how the read ended; the checks judge it
		}
		return err
	case "read-all":
		readCtx, cancel := context.WithTimeout(ctx, r.opts.CheckTimeout)
		defer cancel()
		for {
			_, err := r.client.Read(readCtx, 64<<10)
			if readEnded(err) {
				return nil
			}
			if err != nil {
				return err
			}
		}
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

// readEnded reports whether a read ended the way a lesson may show: the
// server closed (EOF) or reset, or nothing came in time. The read event
// says which; the step's checks judge whether that was expected.
func readEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, context.DeadlineExceeded)
}

// pattern is n bytes of readable text, so previews of big writes make sense.
func pattern(n int) []byte {
	const line = "the quick brown fox jumps over the lazy dog\n"
	b := make([]byte, n)
	for i := range b {
		b[i] = line[i%len(line)]
	}
	return b
}

func (r *runner) serverConfig() server.Config {
	spec := r.lesson.Server
	cfg := server.Config{
		Addr:          r.listenAddr(),
		ReadDelay:     spec.ReadDelay,
		ReadSize:      spec.ReadSize,
		ReadInterval:  spec.ReadInterval,
		ReceiveBuffer: spec.ReceiveBuffer,
		Backlog:       spec.Backlog,
	}
	if spec.HasReplyOnEOF {
		cfg.ReplyOnEOF = []byte(spec.ReplyOnEOF)
	}
	switch spec.Behavior {
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
	case "lines":
		cfg.Behavior = server.Lines
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

// quietPeriod is how long a step with expect-none directives watches for
// what must not happen, once everything it expects has been seen.
const quietPeriod = 300 * time.Millisecond

// checker matches the timeline's events against a step's expectations:
// ordered ones each after the previous one's match, "anytime" ones
// whenever, "none" ones must not match at all; min=N ones need N events.
// Order means time order: an event the timeline had to show late (the
// capture fell behind) still counts in its place.
type checker struct {
	mu      sync.Mutex
	expects []Expect
	events  []timeline.Event // this step's, in time order
	counts  []int            // events that matched each expectation
	since   time.Time
	done    chan struct{}
}

// start arms the checker for a step; the returned channel closes when all
// positive expectations are met.
func (c *checker) start(expects []Expect) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expects = expects
	c.events = c.events[:0]
	c.counts = make([]int, len(expects))
	c.since = time.Now()
	c.done = make(chan struct{})
	c.checkDone()
	return c.done
}

// waitsForSomething reports whether the step has positive expectations
// (so it must wait for them) and whether it has negative ones (so it must
// then watch a while longer).
func (c *checker) waitsForSomething() (positive, negative bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.expects {
		if x.None {
			negative = true
		} else {
			positive = true
		}
	}
	return positive, negative
}

// finish disarms the checker and says, per expectation, whether its event
// was seen (enough times).
func (c *checker) finish() []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make([]bool, len(c.expects))
	for i, x := range c.expects {
		seen[i] = c.counts[i] >= x.needed()
	}
	c.expects, c.counts, c.events = nil, nil, c.events[:0]
	return seen
}

func (c *checker) observe(e timeline.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expects == nil || e.Time.Before(c.since) {
		return // no step running, or an event of an earlier step
	}
	if n := len(c.events); n == 0 || !e.Time.Before(c.events[n-1].Time) {
		c.events = append(c.events, e)
		c.apply(&c.events[len(c.events)-1])
	} else {
		// Late: put it in its place and match the step's events again.
		i := sort.Search(n, func(i int) bool { return c.events[i].Time.After(e.Time) })
		c.events = slices.Insert(c.events, i, e)
		clear(c.counts)
		for i := range c.events {
			c.apply(&c.events[i])
		}
	}
	c.checkDone()
}

// apply matches one event, taken in time order.
func (c *checker) apply(e *timeline.Event) {
	// Only the first ordered expectation not yet met may take the event.
	for i := range c.expects {
		x := &c.expects[i]
		if x.Anytime || x.None || c.counts[i] >= x.needed() {
			continue
		}
		if x.Matches(e) {
			c.counts[i]++
		}
		break
	}
	for i := range c.expects {
		if x := &c.expects[i]; (x.Anytime || x.None) && x.Matches(e) {
			c.counts[i]++
		}
	}
}

// checkDone closes done once every positive expectation is met.
func (c *checker) checkDone() {
	for i, x := range c.expects {
		if !x.None && c.counts[i] < x.needed() {
			return
		}
	}
	select {
	case <-c.done:
	default:
		close(c.done)
	}
}

// needed is how many matching events the expectation wants: min=N, or 1.
func (x *Expect) needed() int {
	for _, c := range x.Where {
		if c.Key == "min" {
			n, _ := strconv.Atoi(c.Value)
			return n
		}
	}
	return 1
}

// Display is the expectation as a learner reads it in a check line: an
// expect-none reads "no server connection".
func (x *Expect) Display() string {
	if x.None {
		return "no " + x.Text
	}
	return x.Text
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
	local, remote := e.Endpoints()
	switch c.Key {
	case "min":
		return true // a count, not a property of one event
	case "len":
		return uint64(e.PayloadLen()) == n
	case "ip":
		a := remote.Addr()
		return a.IsValid() && (a.Unmap().Is4() == (c.Value == "4"))
	case "detail":
		return strings.Contains(programDetail(e), strings.ReplaceAll(c.Value, "-", " "))
	case "port":
		if e.Source == timeline.SourceWire {
			local = e.Segment.Src
			if !e.Segment.FromClient {
				local = e.Segment.Dst
			}
			return ephemeral(local.Port())
		}
		if e.Source == timeline.SourceServer {
			return ephemeral(remote.Port())
		}
		return ephemeral(local.Port())
	case "family", "node-remote":
		if e.Source != timeline.SourceServer {
			return false
		}
		if c.Key == "family" {
			return e.Server.Family == c.Value
		}
		return e.Server.NodeRemoteAddress == c.Value
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
	case "win":
		return s.ScaledWindow() == uint64(n)
	case "step":
		return dashed(s.Step.String()) == c.Value
	case "flags":
		return s.Flags.String() == c.Value
	case "analysis":
		for _, name := range s.Analysis.Names() {
			if dashed(name) == c.Value {
				return true
			}
		}
	}
	return false
}

// programDetail is a server or client event's detail and error text.
func programDetail(e *timeline.Event) string {
	var detail string
	var err error
	switch e.Source {
	case timeline.SourceServer:
		detail, err = e.Server.Detail, e.Server.Err
	case timeline.SourceClient:
		detail, err = e.Client.Detail, e.Client.Err
	}
	if err != nil {
		detail += " " + err.Error()
	}
	return detail
}

// ephemeral reports whether port is in the kernel's range for client ports.
func ephemeral(port uint16) bool {
	lo, hi := ephemeralRange()
	return int(port) >= lo && int(port) <= hi
}

// ephemeralRange is read once (Linux: /proc/sys/net/ipv4/ip_local_port_range,
// 32768-60999 by default).
var ephemeralRange = sync.OnceValues(func() (lo, hi int) {
	lo, hi = 32768, 60999
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if a, err := strconv.Atoi(f[0]); err == nil {
				lo = a
			}
			if b, err := strconv.Atoi(f[1]); err == nil {
				hi = b
			}
		}
	}
	return lo, hi
})
