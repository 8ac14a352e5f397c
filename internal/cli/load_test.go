package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServeUnderLoad: 200 connections, 20 at a time, each writing one
// message and reading its reply. serve shows every handshake and every
// server event, drops and skips nothing, and its goroutines go back to
// where they were once the connections are closed.
func TestServeUnderLoad(t *testing.T) {
	skipUnlessCapture(t)
	const (
		conns    = 200
		parallel = 20
		reply    = "Hello from server"
	)
	port := strconv.Itoa(freePort(t))
	addr := "127.0.0.1:" + port
	out, errOut := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--port", port, "--json"}, strings.NewReader(""), out, errOut)
	}()
	stopped := false
	stop := func() int {
		t.Helper()
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(10 * time.Second):
			t.Fatalf("serve did not return within 10 s of cancel; stderr: %q", errOut.String())
			return -1
		}
	}
	t.Cleanup(func() { stop() })
	waitFor(t, "serve to listen", 10*time.Second, func() bool { return strings.Contains(errOut.String(), "serving on") })
	baseline := runtime.NumGoroutine()

	jobs := make(chan int)
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				if err := func() error {
					c, err := net.DialTimeout("tcp", addr, 10*time.Second)
					if err != nil {
						return err
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(10 * time.Second))
					if _, err := c.Write([]byte("hello")); err != nil {
						return err
					}
					got := make([]byte, len(reply))
					if _, err := io.ReadFull(c, got); err != nil {
						return err
					}
					if string(got) != reply {
						return fmt.Errorf("reply %q", got)
					}
					return nil
				}(); err != nil {
					errs <- fmt.Errorf("connection %d: %w", id, err)
				}
			}
		}()
	}
	for id := 0; id < conns; id++ {
		jobs <- id
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// A connection's close event carries its number; the listener's does not.
	connCloses := func() int {
		n := 0
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.Contains(line, `"source":"server","kind":"close"`) && strings.Contains(line, `"conn":`) {
				n++
			}
		}
		return n
	}
	waitFor(t, fmt.Sprintf("%d close events on the timeline", conns), 10*time.Second, func() bool { return connCloses() >= conns })
	var now int
	deadline := time.Now().Add(10 * time.Second)
	for now = runtime.NumGoroutine(); now > baseline+2 && time.Now().Before(deadline); now = runtime.NumGoroutine() {
		time.Sleep(20 * time.Millisecond)
	}
	if now > baseline+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines 10 s after every connection closed, %d before the load:\n%s",
			now, baseline, buf[:runtime.Stack(buf, true)])
	}

	if code := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, errOut.String())
	}
	text := out.String()
	events := parseJSONLines(t, text)
	count := map[string]int{}
	for _, e := range events {
		count[e.Source+" "+e.Kind]++
	}
	for _, want := range []string{"wire SYN", "wire SYN+ACK", "server connection", "server close"} {
		n := count[want]
		if want == "server close" {
			n = connCloses()
		}
		if n != conns {
			t.Errorf("%d %s events, want %d", n, want, conns)
		}
	}
	// Every connection has its data and write events.
	perConn := map[uint64]map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var e struct {
			Source, Kind string
			Conn         uint64
		}
		json.Unmarshal([]byte(line), &e)
		if e.Source != "server" || e.Conn == 0 {
			continue
		}
		if perConn[e.Conn] == nil {
			perConn[e.Conn] = map[string]int{}
		}
		perConn[e.Conn][e.Kind]++
	}
	if len(perConn) != conns {
		t.Errorf("server events for %d connections, want %d", len(perConn), conns)
	}
	for id, kinds := range perConn {
		for _, k := range []string{"connection", "data", "write", "close"} {
			if kinds[k] == 0 {
				t.Errorf("connection %d has no %s event: %v", id, k, kinds)
				break
			}
		}
	}
	if count["server data"] < conns || count["server write"] < conns {
		t.Errorf("%d data and %d write events, want at least %d each", count["server data"], count["server write"], conns)
	}
	if n := count["timeline skipped"]; n > 0 {
		t.Errorf("%d skipped lines: the output could not keep up", n)
	}
	if !strings.Contains(errOut.String(), " 0 dropped by the kernel") {
		t.Errorf("stderr: %q", errOut.String())
	}
}
