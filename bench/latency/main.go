// Command latency measures how long `playground watch --json` takes to show
// a segment: the delay from the packet's capture timestamp (the "time"
// field, the kernel's CLOCK_REALTIME stamp) to the moment this program reads
// the segment's line from the child's stdout pipe.
//
// It runs a small echo server on 127.0.0.1:PORT, starts
// `BIN watch --port PORT --json` with stdout piped, makes warm-up
// connections until one of their SYNs is shown (the capture is then open),
// and then opens a connection every -interval for -duration; each connection
// writes -size bytes, reads the echo and closes. Every line is stamped with
// time.Now() as soon as the read that completed it returns. At the end the
// child gets SIGINT, and its stderr summary gives the kernel drop count and
// the number of segments it captured, so lines that were never shown are
// visible.
//
// Everything is bounded: -duration/-interval connections, each with a 2 s
// deadline, and a hard -timeout for the whole run. Needs root (capturing).
// Exits 0 even when a target is missed; non-zero on any other failure.
//
// Usually run through bench/latency.sh, which builds the binary.
package main

import (
	"github.com/tcp-playground/playground/pkg/timeline"

	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	bin       string
	port      int
	duration  time.Duration
	interval  time.Duration
	size      int
	targetP99 time.Duration
	timeout   time.Duration
	noKernel  bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "the playground binary (required)")
	flag.IntVar(&o.port, "port", 4991, "TCP port of the echo server on 127.0.0.1")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to open connections")
	flag.DurationVar(&o.interval, "interval", 10*time.Millisecond, "one new connection this often")
	flag.IntVar(&o.size, "size", 16, "bytes each connection writes (and reads back)")
	flag.DurationVar(&o.targetP99, "target-p99", 0, "target for the p99 capture-to-line delay (default: twice the reorder window, 10 ms without the kernel lane as before it)")
	flag.BoolVar(&o.noKernel, "no-kernel", false, "watch with --no-kernel: the 5 ms reorder window instead of the kernel lane's 15 ms")
	flag.DurationVar(&o.timeout, "timeout", 0, "hard limit for the whole run (default: duration + 30s)")
	flag.Parse()
	if flag.NArg() > 0 {
		fatal(fmt.Errorf("unexpected argument %q", flag.Arg(0)))
	}
	if o.bin == "" {
		fatal(errors.New("-bin is required (bench/latency.sh builds it and passes it)"))
	}
	if o.port < 1 || o.port > 65535 || o.duration <= 0 || o.interval <= 0 || o.size < 1 {
		fatal(errors.New("-port must be 1-65535; -duration, -interval and -size must be positive"))
	}
	if o.duration/o.interval > 100000 {
		fatal(errors.New("-duration/-interval asks for more than 100000 connections"))
	}
	if o.targetP99 <= 0 {
		o.targetP99 = 2 * window(o) // the merger releases every half window
	}
	if o.timeout <= 0 {
		o.timeout = o.duration + 30*time.Second
	}
	if os.Geteuid() != 0 {
		fatal(errors.New("must be run as root: `playground watch` opens a live capture on lo"))
	}
	if err := run(o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "latency:", err)
	os.Exit(1)
}

// line is one line of the child's stdout and when it was read.
type line struct {
	read time.Time
	text []byte
}

// wireLine is the part of a JSON line the bench needs.
type wireLine struct {
	Time   string `json:"time"`
	Source string `json:"source"`
	Kind   string `json:"kind"`
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	Stream uint64 `json:"stream"`
}

// lineReader collects the child's stdout lines as they arrive.
type lineReader struct {
	mu    sync.Mutex
	lines []line
	cond  *sync.Cond
	eof   bool
	err   error
}

func newLineReader() *lineReader {
	r := &lineReader{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// loop reads raw chunks and stamps each line completed by a read with the
// time that read returned, before any parsing.
func (r *lineReader) loop(f io.Reader) {
	buf := make([]byte, 256<<10)
	var partial []byte
	for {
		n, err := f.Read(buf)
		now := time.Now()
		if n > 0 {
			chunk := buf[:n]
			var got []line
			for {
				i := bytes.IndexByte(chunk, '\n')
				if i < 0 {
					partial = append(partial, chunk...)
					break
				}
				text := append(append([]byte(nil), partial...), chunk[:i]...)
				partial = partial[:0]
				got = append(got, line{read: now, text: text})
				chunk = chunk[i+1:]
			}
			if len(got) > 0 {
				r.mu.Lock()
				r.lines = append(r.lines, got...)
				r.mu.Unlock()
				r.cond.Broadcast()
			}
		}
		if err != nil {
			r.mu.Lock()
			r.eof = true
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				r.err = err
			}
			if len(partial) > 0 {
				r.lines = append(r.lines, line{read: now, text: partial})
			}
			r.mu.Unlock()
			r.cond.Broadcast()
			return
		}
	}
}

// count is how many lines have been read so far.
func (r *lineReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lines)
}

// snapshot returns the lines read so far.
func (r *lineReader) snapshot() []line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]line(nil), r.lines...)
}

// waitFor waits until a line from index `from` on satisfies ok, or until
// the deadline; it reports whether one did.
func (r *lineReader) waitFor(from int, deadline time.Time, ok func([]byte) bool) bool {
	timer := time.AfterFunc(time.Until(deadline), r.cond.Broadcast)
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for ; from < len(r.lines); from++ {
			if ok(r.lines[from].text) {
				return true
			}
		}
		if r.eof || !time.Now().Before(deadline) {
			return false
		}
		r.cond.Wait()
	}
}

// echoServer echoes every connection until the peer closes it.
func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.Copy(c, c)
		}()
	}
}

// exchange is one short connection: connect, write, read the echo, close.
// It returns the client's local port.
func exchange(addr string, payload []byte) (int, error) {
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	port := c.LocalAddr().(*net.TCPAddr).Port
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(payload); err != nil {
		return port, err
	}
	echo := make([]byte, len(payload))
	if _, err := io.ReadFull(c, echo); err != nil {
		return port, err
	}
	if !bytes.Equal(echo, payload) {
		return port, errors.New("echo differs from what was sent")
	}
	return port, nil
}

func portOf(hostport string) int {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return -1
	}
	return n
}

var summaryRE = regexp.MustCompile(`(\d+) segments captured, (\d+) dropped by the kernel(?:, (\d+) events not shown)?`)

func run(o options) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port))
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return fmt.Errorf("echo server: %w", err)
	}
	defer ln.Close()
	go echoServer(ln)

	args := []string{"watch", "--port", strconv.Itoa(o.port), "--json"}
	if o.noKernel {
		args = append(args, "--no-kernel")
	}
	cmd := exec.Command(o.bin, args...)
	// If this program dies, the child should not outlive it (cleared if the
	// child drops root through SUDO_UID; the hard timeout below also kills it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Our own pipe rather than cmd.StdoutPipe: Wait would close that one,
	// possibly before the last lines are read.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer stdout.Close()
	cmd.Stdout = stdoutW
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Start()
	stdoutW.Close()
	if err != nil {
		return fmt.Errorf("starting %s: %w", o.bin, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	hard := time.AfterFunc(o.timeout, func() {
		fmt.Fprintf(os.Stderr, "latency: hard timeout %v reached, killing the watcher\n", o.timeout)
		_ = cmd.Process.Kill()
	})
	defer hard.Stop()
	childDone := false
	defer func() {
		if !childDone {
			_ = cmd.Process.Kill()
			<-waited
		}
	}()

	lines := newLineReader()
	go lines.loop(stdout)

	// Warm up: connect until one of our SYNs is shown, so the capture is open.
	payload := bytes.Repeat([]byte("x"), o.size)
	copy(payload, "latency-bench ")
	warmConns := 0
	ready := false
	readyDeadline := time.Now().Add(15 * time.Second)
	for !ready && time.Now().Before(readyDeadline) {
		from := lines.count()
		p, err := exchange(addr, payload)
		warmConns++
		if err != nil {
			return fmt.Errorf("warm-up connection: %w", err)
		}
		want := fmt.Sprintf(`"src":"127.0.0.1:%d"`, p)
		ready = lines.waitFor(from, time.Now().Add(300*time.Millisecond), func(b []byte) bool {
			return bytes.Contains(b, []byte(`"kind":"SYN"`)) && bytes.Contains(b, []byte(want))
		})
		select {
		case err := <-waited:
			childDone = true
			return fmt.Errorf("the watcher exited early (%v): %s", err, strings.TrimSpace(stderr.String()))
		default:
		}
	}
	if !ready {
		return errors.New("no SYN of a warm-up connection was shown within 15 s")
	}
	readyAfter := time.Since(start)
	// Let the warm-up connections' last segments through; their streams are
	// discarded anyway.
	time.Sleep(200 * time.Millisecond)

	// The load: one connection every interval, each in its own goroutine so
	// a slow one does not delay the schedule.
	n := int(o.duration / o.interval)
	var (
		mu        sync.Mutex
		loadPorts = map[int]bool{}
		failures  []error
		wg        sync.WaitGroup
	)
	warmLines := lines.count() // lines before the load belong to warm-up
	loadStart := time.Now()
	lateStarts := 0
	for i := 0; i < n; i++ {
		at := loadStart.Add(time.Duration(i) * o.interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		} else if d < -o.interval {
			lateStarts++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := exchange(addr, payload)
			mu.Lock()
			defer mu.Unlock()
			if p != 0 {
				loadPorts[p] = true
			}
			if err != nil {
				failures = append(failures, err)
			}
		}()
	}
	wg.Wait()
	loadTook := time.Since(loadStart)

	// Drain: wait until no line has arrived for 500 ms (at most 5 s).
	drainDeadline := time.Now().Add(5 * time.Second)
	for last := -1; time.Now().Before(drainDeadline); {
		c := lines.count()
		if c == last {
			break
		}
		last = c
		time.Sleep(500 * time.Millisecond)
	}
	stopAt := time.Now()
	beforeStop := lines.count()

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		return fmt.Errorf("SIGINT to the watcher: %w", err)
	}
	var waitErr error
	select {
	case waitErr = <-waited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		waitErr = <-waited
		waitErr = fmt.Errorf("did not stop within 10 s of SIGINT, killed (%v)", waitErr)
	}
	childDone = true
	// The watcher has exited: read its stdout to the end.
	lines.waitFor(0, time.Now().Add(2*time.Second), func([]byte) bool { return false })
	lines.mu.Lock()
	readErr := lines.err
	lines.mu.Unlock()
	if readErr != nil {
		return fmt.Errorf("reading the watcher's stdout: %w", readErr)
	}
	all := lines.snapshot()

	// Measure.
	var (
		delays      []time.Duration
		perConn     = map[uint64]int{} // by stream: client ports get reused
		warmStreams = map[uint64]bool{}
		warmSeen    int
		otherLines  int
		badLines    int
		afterSIGINT = len(all) - beforeStop
	)
	for i, l := range all {
		var w wireLine
		if err := json.Unmarshal(l.text, &w); err != nil || w.Time == "" {
			badLines++
			continue
		}
		if w.Source != "wire" {
			otherLines++
			continue
		}
		client := portOf(w.Src)
		if client == o.port {
			client = portOf(w.Dst)
		}
		if i < warmLines {
			warmStreams[w.Stream] = true
		}
		if warmStreams[w.Stream] {
			warmSeen++
			continue
		}
		mu.Lock()
		ours := loadPorts[client]
		mu.Unlock()
		if !ours {
			otherLines++
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, w.Time)
		if err != nil {
			badLines++
			continue
		}
		perConn[w.Stream]++
		delays = append(delays, l.read.Sub(t))
	}

	captured, drops, notShown := -1, -1, 0
	if m := summaryRE.FindStringSubmatch(stderr.String()); m != nil {
		captured, _ = strconv.Atoi(m[1])
		drops, _ = strconv.Atoi(m[2])
		if m[3] != "" {
			notShown, _ = strconv.Atoi(m[3])
		}
	}

	// Report.
	fmt.Printf("connections: %d (every %v for %v; load took %.2f s", n, o.interval, o.duration, loadTook.Seconds())
	if lateStarts > 0 {
		fmt.Printf(", %d started over an interval late", lateStarts)
	}
	fmt.Printf("), %d failed\n", len(failures))
	for i, err := range failures {
		if i == 3 {
			fmt.Printf("  ... and %d more failures\n", len(failures)-3)
			break
		}
		fmt.Printf("  failure: %v\n", err)
	}
	fmt.Printf("watcher ready %d ms after start (%d warm-up connection(s), %d warm-up lines discarded)\n",
		readyAfter.Milliseconds(), warmConns, warmSeen)

	hist := map[int]int{}
	for _, c := range perConn {
		hist[c]++
	}
	hist[0] = n - len(perConn)
	var keys []int
	for k, v := range hist {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d segs: %d", k, hist[k]))
	}
	expLo, expHi := 9*n, 10*n
	mark := ""
	if len(delays) < 8*n {
		mark = "   MISSED (fewer than 8 per connection: lines lost?)"
	}
	fmt.Printf("segments shown: %d of ~%d-%d expected (9-10 per connection)%s\n", len(delays), expLo, expHi, mark)
	fmt.Printf("  per connection: %s\n", strings.Join(parts, ", "))

	if len(delays) == 0 {
		fmt.Println("capture-to-line delay: no lines to measure   MISSED")
	} else {
		sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
		pct := func(p float64) time.Duration {
			i := int(p*float64(len(delays))+0.5) - 1
			i = max(0, min(i, len(delays)-1))
			return delays[i]
		}
		med := delays[len(delays)/2]
		if len(delays)%2 == 0 {
			med = (delays[len(delays)/2-1] + delays[len(delays)/2]) / 2
		}
		p99 := pct(0.99)
		mark = ""
		if p99 >= o.targetP99 {
			mark = "   MISSED"
		}
		fmt.Printf("capture-to-line delay: median %s, p99 %s, max %s, min %s, n=%d   (target p99 < %s, reorder window %s included)%s\n",
			ms(med), ms(p99), ms(delays[len(delays)-1]), ms(delays[0]), len(delays), ms(o.targetP99), ms(window(o)), mark)
		fmt.Println("  (read time is taken when this program's read of the stdout pipe returns: the pipe adds a few microseconds)")
	}

	if captured < 0 {
		fmt.Printf("kernel drops: unknown   MISSED (no summary on the watcher's stderr: %q)\n", strings.TrimSpace(stderr.String()))
	} else {
		mark = ""
		if drops > 0 {
			mark = "   MISSED"
		}
		fmt.Printf("kernel drops: %d%s\n", drops, mark)
		shown := len(all) - badLines
		mark = ""
		if shown < captured {
			mark = "   MISSED (captured but never shown)"
		}
		fmt.Printf("watcher: %d segments captured, %d lines shown (incl. warm-up), %d not shown (slow terminal)%s\n",
			captured, shown, notShown, mark)
	}
	if badLines > 0 || otherLines > 0 || afterSIGINT > 0 {
		fmt.Printf("odd: %d unparsable lines, %d lines of other connections/sources, %d lines only after SIGINT (%d ms after load)\n",
			badLines, otherLines, afterSIGINT, stopAt.Sub(loadStart.Add(loadTook)).Milliseconds())
	}
	if waitErr != nil {
		fmt.Printf("watcher exit: %v\n", waitErr)
	}
	return nil
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// window is the reorder window watch runs with: the kernel lane's, unless
// it is off.
func window(o options) time.Duration {
	if o.noKernel {
		return timeline.DefaultReorderWindow
	}
	return timeline.KernelReorderWindow
}
