//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The calls tests use ports 4900-4909.

type callRecorder struct {
	mu    sync.Mutex
	calls []Call
}

func (r *callRecorder) add(c Call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *callRecorder) snapshot() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *callRecorder) waitFor(t *testing.T, what string, done func([]Call) bool) []Call {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls := r.snapshot()
		if done(calls) {
			return calls
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s; recorded:\n%s", what, describeCalls(calls))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func describeCalls(calls []Call) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "  %s %s %s[%d] %s %s len=%d %q %s %v\n",
			c.Time.Format("15:04:05.000000"), c.Kind, c.Comm, c.PID, c.Local, c.Remote, c.Len, c.Preview, c.How, c.Err)
	}
	return b.String()
}

// openCalls opens Calls and runs it until the test ends; it skips the test
// only when the process may not load BPF programs.
func openCalls(t *testing.T, opts Options) (*Calls, *callRecorder) {
	t.Helper()
	calls, err := OpenCalls(opts)
	if errors.Is(err, ErrPermission) {
		t.Skipf("socket calls: %v (run the tests as root)", err)
	}
	if err != nil {
		t.Fatalf("OpenCalls: %v", err)
	}
	rec := &callRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- calls.Run(ctx, rec.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := calls.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return calls, rec
}

// TestCallsOfOneConnection runs one connection in this process and checks
// every call, on both ends, with its addresses, length and preview.
func TestCallsOfOneConnection(t *testing.T) {
	c, rec := openCalls(t, Options{Ports: []uint16{4900}})
	if err := c.Missing(); err != nil {
		t.Errorf("Missing: %v (every hook should attach on this kernel)", err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:4900")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	before := time.Now()
	serverDone := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		defer conn.Close()
		buf := make([]byte, 100)
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != "hello\n" {
			serverDone <- fmt.Errorf("server read %q, %v", buf[:n], err)
			return
		}
		if _, err := conn.Write([]byte("Hello from server")); err != nil {
			serverDone <- err
			return
		}
		_, err = conn.Read(buf)
		if err != io.EOF {
			serverDone <- fmt.Errorf("server's second read: %v, want EOF", err)
			return
		}
		serverDone <- nil
	}()
	conn, err := net.Dial("tcp4", "127.0.0.1:4900")
	if err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort(conn.LocalAddr().String())
	server := netip.MustParseAddrPort("127.0.0.1:4900")
	if _, err := conn.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := io.ReadAtLeast(conn, buf, 17); err != nil || n != 17 {
		t.Fatalf("client read %d: %v", n, err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := <-serverDone; err != nil {
		t.Fatal(err)
	}
	conn.Close()

	calls := rec.waitFor(t, "both closes", func(cs []Call) bool {
		n := 0
		for _, c := range cs {
			if c.Kind == CallClose {
				n++
			}
		}
		return n == 2
	})
	type want struct {
		kind          CallKind
		local, remote netip.AddrPort
		len           int
		preview       string
		how           ShutdownHow
	}
	wants := []want{
		{kind: CallConnect, local: client, remote: server},
		{kind: CallAccept, local: server, remote: client},
		{kind: CallWrite, local: client, remote: server, len: 6, preview: "hello\n"},
		{kind: CallRead, local: server, remote: client, len: 6, preview: "hello\n"},
		{kind: CallWrite, local: server, remote: client, len: 17, preview: "Hello from server"},
		{kind: CallRead, local: client, remote: server, len: 17, preview: "Hello from server"},
		{kind: CallShutdown, local: client, remote: server, how: ShutWrite},
		{kind: CallRead, local: server, remote: client, len: 0},
		{kind: CallClose, local: server, remote: client},
		{kind: CallClose, local: client, remote: server},
	}
	// The accept may come before or after the client's first write
	// (another goroutine): compare each end's calls in its own order.
	for _, end := range []netip.AddrPort{client, server} {
		var got, wantEnd []string
		for _, c := range calls {
			if c.Local == end {
				got = append(got, fmt.Sprintf("%s %s→%s len=%d %q %s", c.Kind, c.Local, c.Remote, c.Len, c.Preview, c.How))
				if c.PID != uint32(os.Getpid()) || c.Comm == "" {
					t.Errorf("%s: pid %d comm %q, want this process (%d)", c.Kind, c.PID, c.Comm, os.Getpid())
				}
				if c.Time.Before(before) || c.Time.After(time.Now()) {
					t.Errorf("%s at %v: not between the test's start %v and now", c.Kind, c.Time, before)
				}
			}
		}
		for _, w := range wants {
			if w.local == end {
				wantEnd = append(wantEnd, fmt.Sprintf("%s %s→%s len=%d %q %s", w.kind, w.local, w.remote, w.len, w.preview, w.how))
			}
		}
		if !slices.Equal(got, wantEnd) {
			t.Errorf("calls of %s:\n got  %q\n want %q\nrecorded:\n%s", end, got, wantEnd, describeCalls(calls))
		}
	}
	if lost := c.Lost(); lost != 0 {
		t.Errorf("Lost = %d, want 0", lost)
	}
}

// TestCallsExcludePID: the playground leaves its own calls out.
func TestCallsExcludePID(t *testing.T) {
	_, rec := openCalls(t, Options{Ports: []uint16{4901}, ExcludePID: uint32(os.Getpid())})
	ln, err := net.Listen("tcp", "127.0.0.1:4901")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("x"))
	s.Read(make([]byte, 1))
	conn.Close()
	s.Close()
	time.Sleep(100 * time.Millisecond)
	if calls := rec.snapshot(); len(calls) > 0 {
		t.Errorf("calls of the excluded process reported:\n%s", describeCalls(calls))
	}
}

// TestCallsOtherPortsIgnored: the port filter runs in the kernel.
func TestCallsOtherPortsIgnored(t *testing.T) {
	_, rec := openCalls(t, Options{Ports: []uint16{4902}})
	ln, err := net.Listen("tcp", "127.0.0.1:4903")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("x"))
	conn.Close()
	time.Sleep(100 * time.Millisecond)
	if calls := rec.snapshot(); len(calls) > 0 {
		t.Errorf("calls on an unwatched port reported:\n%s", describeCalls(calls))
	}
}

// TestCallsRefusedConnect: a blocking connect to a port where nothing
// listens fails with ECONNREFUSED, and the kernel has then zeroed the
// socket's ports: the call and the close after it are still reported,
// with the address asked for.
func TestCallsRefusedConnect(t *testing.T) {
	_, rec := openCalls(t, Options{Ports: []uint16{4904}})
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = syscall.Connect(fd, &syscall.SockaddrInet4{Port: 4904, Addr: [4]byte{127, 0, 0, 1}})
	syscall.Close(fd)
	if err != syscall.ECONNREFUSED {
		t.Fatalf("connect: %v, want ECONNREFUSED", err)
	}
	calls := rec.waitFor(t, "the close", func(cs []Call) bool { return len(cs) > 0 && cs[len(cs)-1].Kind == CallClose })
	want := netip.MustParseAddrPort("127.0.0.1:4904")
	if len(calls) != 2 || calls[0].Kind != CallConnect || calls[0].Err != syscall.ECONNREFUSED || calls[0].Remote != want || calls[1].Remote.Port() != 4904 {
		t.Errorf("want a refused connect to %s, then its close; recorded:\n%s", want, describeCalls(calls))
	}
}

// TestCallsMissingTracepoint: without one tracepoint, Missing says which
// calls are not shown, in one error, and the others still are.
func TestCallsMissingTracepoint(t *testing.T) {
	c, rec := openCalls(t, Options{Ports: []uint16{4905}, missingTracepoint: "sys_enter_close"})
	err := c.Missing()
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "close()") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Missing: %v, want one line wrapping ErrUnsupported that names close()", err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:4905")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp4", "127.0.0.1:4905")
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("x"))
	conn.Close()
	calls := rec.waitFor(t, "the connect and the write", func(cs []Call) bool { return len(cs) >= 2 })
	time.Sleep(100 * time.Millisecond)
	for _, c := range rec.snapshot() {
		if c.Kind == CallClose {
			t.Errorf("a close was reported without its tracepoint:\n%s", describeCalls(calls))
		}
	}
}

// TestCallsOnlyTCP: a UDP socket on a watched port, and every socket with
// AllPorts, pass the same tracepoints as TCP's reads and writes; none is
// reported.
func TestCallsOnlyTCP(t *testing.T) {
	_, rec := openCalls(t, Options{Ports: []uint16{4906}})
	a, err := net.ListenPacket("udp4", "127.0.0.1:4906")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("udp4", "127.0.0.1:4906")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Write([]byte("udp"))
	a.ReadFrom(make([]byte, 10))
	time.Sleep(100 * time.Millisecond)
	if calls := rec.snapshot(); len(calls) > 0 {
		t.Errorf("UDP calls reported:\n%s", describeCalls(calls))
	}
}
