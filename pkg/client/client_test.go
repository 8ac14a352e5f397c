package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/client"
)

// wait bounds every wait: far longer than any step needs, so it only turns
// a hang into a failure and never decides a result.
const wait = 10 * time.Second

type recorder struct {
	mu     sync.Mutex
	events []client.Event
	hook   func(client.Event) // called from emit, if set
}

func (r *recorder) emit(e client.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if r.hook != nil {
		r.hook(e)
	}
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, e := range r.events {
		s = append(s, e.Kind.String())
	}
	return s
}

func (r *recorder) last() client.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[len(r.events)-1]
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// serve runs handle on the first connection accepted on addr ("127.0.0.1:0"
// or "[::1]:0"), closes the connection when handle returns, and returns the
// listener's address. Cleanup closes the listener and the connection and
// waits for handle to return.
func serve(t *testing.T, addr string, handle func(c *net.TCPConn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var mu sync.Mutex
	var conn net.Conn
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		defer c.Close()
		c.SetDeadline(time.Now().Add(wait))
		handle(c.(*net.TCPConn))
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func ctxWait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func TestKindString(t *testing.T) {
	for k, want := range map[client.Kind]string{
		client.Dialing: "dial", client.Connected: "connected", client.Write: "write", client.Read: "read",
		client.HalfClose: "half-close", client.Close: "close", client.Abort: "abort", client.Error: "error",
		client.Kind(99): "kind(99)",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d) = %q, want %q", uint8(k), got, want)
		}
	}
}

func TestDialRefused(t *testing.T) {
	// A port that was just free: nothing listens there, so the kernel
	// answers the SYN with RST.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()

	var r recorder
	c, err := client.Dial(ctxWait(t), addr.String(), r.emit)
	if err == nil {
		c.Close()
		t.Fatal("dial to a closed port succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial: %v, want ECONNREFUSED", err)
	}
	if g, want := r.kinds(), []string{"dial", "error"}; !equal(g, want) {
		t.Fatalf("events %v, want %v", g, want)
	}
	for _, e := range r.events {
		if e.Remote != addr {
			t.Errorf("%v event: Remote %v, want %v", e.Kind, e.Remote, addr)
		}
	}
	if e := r.last(); !errors.Is(e.Err, syscall.ECONNREFUSED) {
		t.Errorf("error event Err %v", e.Err)
	}
}

func TestConversation(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(listen, func(t *testing.T) {
			if listen == "[::1]:0" {
				if ln, err := net.Listen("tcp6", listen); err != nil {
					t.Skip("no IPv6 on loopback")
				} else {
					ln.Close()
				}
			}
			peer := make(chan netip.AddrPort, 1)
			addr := serve(t, listen, func(c *net.TCPConn) {
				peer <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
				buf := make([]byte, 5)
				io.ReadFull(c, buf)
				c.Write([]byte("Hello from server"))
				io.Copy(io.Discard, c)
			})
			var r recorder
			c, err := client.Dial(ctxWait(t), addr.String(), r.emit)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			got, err := c.ReadFull(ctxWait(t), len("Hello from server"))
			if err != nil || string(got) != "Hello from server" {
				t.Fatalf("read %q, %v", got, err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if p := <-peer; c.Local() != p || c.Local().Port() == 0 {
				t.Errorf("Local() = %v, the server saw %v", c.Local(), p)
			}
			if c.Remote() != addr {
				t.Errorf("Remote() = %v, want %v", c.Remote(), addr)
			}
			ks := r.kinds()
			if len(ks) < 5 || !equal(ks[:3], []string{"dial", "connected", "write"}) || ks[len(ks)-1] != "close" {
				t.Fatalf("events %v", ks)
			}
			for _, e := range r.events[1:] {
				if e.Local != c.Local() || e.Remote != addr {
					t.Errorf("%v event: %v → %v, want %v → %v", e.Kind, e.Local, e.Remote, c.Local(), addr)
				}
			}
			if r.events[0].Remote != addr {
				t.Errorf("dial event Remote %v", r.events[0].Remote)
			}
			if w := r.events[2]; string(w.Data) != "hello" {
				t.Errorf("write event %q", w.Data)
			}
		})
	}
}

// Read honours ctx: its deadline and its cancellation end a Read that
// nothing answers, and the connection still works afterwards.
func TestReadContext(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancelled before", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"cancelled while reading", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			// Whether this runs before or during Read, Read must return
			// Canceled; so the race decides nothing.
			go cancel()
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send := make(chan string)
			addr := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
				for s := range send {
					c.Write([]byte(s))
				}
			})
			defer close(send)
			var r recorder
			c, err := client.Dial(ctxWait(t), addr.String(), r.emit)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			ctx, cancel := tc.ctx()
			_, err = c.Read(ctx, 10)
			cancel()
			if !errors.Is(err, tc.want) {
				t.Fatalf("Read: %v, want %v", err, tc.want)
			}
			if tc.want == context.DeadlineExceeded && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Read: %v does not wrap os.ErrDeadlineExceeded", err)
			}
			if e := r.last(); e.Kind != client.Read || !errors.Is(e.Err, tc.want) {
				t.Errorf("last event %v, Err %v; want read, %v", e.Kind, e.Err, tc.want)
			}
			send <- "still here"
			got, err := c.ReadFull(ctxWait(t), len("still here"))
			if err != nil || string(got) != "still here" {
				t.Fatalf("read after the timeout: %q, %v", got, err)
			}
		})
	}
}

// ReadFull reports each read(2): the server sends its second half only
// after the client's first Read event, so there are exactly two.
func TestReadFullCountsReads(t *testing.T) {
	firstRead := make(chan struct{}, 1)
	addr := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		c.Write([]byte("ab"))
		<-firstRead
		c.Write([]byte("cd"))
	})
	r := recorder{hook: func(e client.Event) {
		if e.Kind == client.Read {
			select {
			case firstRead <- struct{}{}:
			default:
			}
		}
	}}
	c, err := client.Dial(ctxWait(t), addr.String(), r.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.ReadFull(ctxWait(t), 4)
	if err != nil || string(got) != "abcd" {
		t.Fatalf("ReadFull = %q, %v", got, err)
	}
	var reads []string
	for _, e := range r.events {
		if e.Kind == client.Read {
			reads = append(reads, string(e.Data))
		}
	}
	if !equal(reads, []string{"ab", "cd"}) {
		t.Errorf("read events %q, want [ab cd]", reads)
	}
	// The server closes after "cd": EOF before any byte is io.EOF, as
	// with io.ReadFull (TestReadFullUnexpectedEOF has the other case).
	if got, err := c.ReadFull(ctxWait(t), 4); len(got) != 0 || err != io.EOF {
		t.Errorf("ReadFull after the server closed: %q, %v; want EOF", got, err)
	}
}

func TestReadFullUnexpectedEOF(t *testing.T) {
	addr := serve(t, "127.0.0.1:0", func(c *net.TCPConn) { c.Write([]byte("ab")) })
	c, err := client.Dial(ctxWait(t), addr.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.ReadFull(ctxWait(t), 4); string(got) != "ab" || err != io.ErrUnexpectedEOF {
		t.Errorf("ReadFull = %q, %v; want ab, ErrUnexpectedEOF", got, err)
	}
}

// Half-close: after CloseWrite the server sees EOF, answers, and closes;
// the client still reads the answer, then EOF.
func TestCloseWrite(t *testing.T) {
	addr := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		b, _ := io.ReadAll(c)
		c.Write([]byte("got " + string(b)))
		c.Close()
	})
	var r recorder
	c, err := client.Dial(ctxWait(t), addr.String(), r.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("bye"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadFull(ctxWait(t), len("got bye")); err != nil || string(got) != "got bye" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := c.Read(ctxWait(t), 10); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	if e := r.last(); e.Kind != client.Read || e.Err != io.EOF || e.Detail == "" {
		t.Errorf("last event %+v", e)
	}
	ks := r.kinds()
	if ks[3] != "half-close" {
		t.Errorf("events %v, want half-close fourth", ks)
	}
}

func TestAbort(t *testing.T) {
	serverErr := make(chan error, 1)
	addr := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		_, err := c.Read(make([]byte, 10))
		serverErr <- err
	})
	var r recorder
	c, err := client.Dial(ctxWait(t), addr.String(), r.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := <-serverErr; !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("server read: %v, want ECONNRESET", err)
	}
	if err := c.Abort(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Abort: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after Abort: %v", err)
	}
	if g, want := r.kinds(), []string{"dial", "connected", "abort"}; !equal(g, want) {
		t.Errorf("events %v, want %v", g, want)
	}
}

func TestCloseIdempotent(t *testing.T) {
	addr := serve(t, "127.0.0.1:0", func(c *net.TCPConn) { io.Copy(io.Discard, c) })
	var r recorder
	c, err := client.Dial(ctxWait(t), addr.String(), r.emit)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if g, want := r.kinds(), []string{"dial", "connected", "close", "write"}; !equal(g, want) {
		t.Errorf("events %v, want %v", g, want)
	}
	if e := r.last(); e.Err == nil || len(e.Data) != 0 {
		t.Errorf("failed write event %+v", e)
	}
}

// The flow-control lesson from the client's side: a server that never
// reads closes its window, and WriteContext returns what the kernel took.
func TestWriteContextBlockedByWindow(t *testing.T) {
	stop := make(chan struct{})
	addr := serve(t, "127.0.0.1:0", func(*net.TCPConn) { <-stop })
	defer close(stop) // before serve's cleanup, which waits for the handler
	var r recorder
	c, err := client.Dial(ctxWait(t), addr.String(), r.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 32<<20) // more than both kernels' buffers can hold
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	n, err := c.WriteContext(ctx, p)
	if !errors.Is(err, context.DeadlineExceeded) || n >= len(p) || n == 0 {
		t.Fatalf("WriteContext = %d of %d, %v", n, len(p), err)
	}
	if e := r.last(); e.Kind != client.Write || len(e.Data) != n || e.Err == nil {
		t.Errorf("write event: %v, %d bytes, err %v; want write, %d bytes, an error", e.Kind, len(e.Data), e.Err, n)
	}
}

// TestCloseSaysWhatWentOnTheWire: the Close event says what closing the
// socket really sent, from the socket's state: a FIN, nothing after a
// half-close or a reset, an RST when unread bytes were waiting.
func TestCloseSaysWhatWentOnTheWire(t *testing.T) {
	tests := []struct {
		name   string
		before func(t *testing.T, c *client.Client, peer net.Conn)
		want   string
	}{
		{"plain", func(*testing.T, *client.Client, net.Conn) {}, client.OutcomeFIN},
		{"after CloseWrite", func(t *testing.T, c *client.Client, _ net.Conn) { c.CloseWrite() }, client.OutcomeNothingFINSent},
		{"unread bytes", func(t *testing.T, c *client.Client, peer net.Conn) {
			peer.Write([]byte("unread"))
			time.Sleep(50 * time.Millisecond)
		}, client.OutcomeRST},
		{"after the peer's RST", func(t *testing.T, c *client.Client, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			c.Read(ctx, 10) // meets the reset
		}, client.OutcomeNothingReset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var events []client.Event
			c, err := client.Dial(context.Background(), ln.Addr().String(), func(e client.Event) { events = append(events, e) })
			if err != nil {
				t.Fatal(err)
			}
			peer, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			tt.before(t, c, peer)
			c.Close()
			last := events[len(events)-1]
			if last.Kind != client.Close || last.Detail != "closed by client: "+tt.want {
				t.Errorf("close event %v %q, want %q", last.Kind, last.Detail, tt.want)
			}
		})
	}
}
