package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/server"
)

// wait bounds every wait for an event or a socket: far longer than any step
// needs, so it only turns a hang into a failure and never decides a result.
const wait = 10 * time.Second

// recorder collects a server's events. emit only sends on a channel with
// room for every event a test makes, so it never blocks the server.
type recorder struct {
	ch      chan server.Event
	seen    []server.Event // consumed by the test goroutine only
	claimed map[int]bool   // indexes in seen that waitFor already returned
}

func newRecorder() *recorder {
	return &recorder{ch: make(chan server.Event, 4096), claimed: map[int]bool{}}
}

func (r *recorder) emit(e server.Event) { r.ch <- e }

// waitFor returns the first event that matches and was not returned
// before, waiting for it if it has not come yet. Events from several
// connections interleave, so it may pass over events another call wants.
func (r *recorder) waitFor(t *testing.T, what string, match func(server.Event) bool) server.Event {
	t.Helper()
	for i, e := range r.seen {
		if !r.claimed[i] && match(e) {
			r.claimed[i] = true
			return e
		}
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		select {
		case e := <-r.ch:
			r.seen = append(r.seen, e)
			if match(e) {
				r.claimed[len(r.seen)-1] = true
				return e
			}
		case <-timeout.C:
			t.Fatalf("no %s event within %v; saw %v", what, wait, kinds(r.seen))
		}
	}
}

func (r *recorder) waitKind(t *testing.T, k server.Kind, conn uint64) server.Event {
	t.Helper()
	return r.waitFor(t, k.String(), func(e server.Event) bool { return e.Kind == k && e.Conn == conn })
}

// all returns every event; call it after Server.Close returned, when no
// more events can come.
func (r *recorder) all() []server.Event {
	for {
		select {
		case e := <-r.ch:
			r.seen = append(r.seen, e)
		default:
			return r.seen
		}
	}
}

func kinds(es []server.Event) []string {
	var s []string
	for _, e := range es {
		s = append(s, e.Kind.String()+"#"+strconv.FormatUint(e.Conn, 10))
	}
	return s
}

func ofConn(es []server.Event, id uint64) []server.Event {
	var out []server.Event
	for _, e := range es {
		if e.Conn == id {
			out = append(out, e)
		}
	}
	return out
}

func start(t *testing.T, cfg server.Config) (*server.Server, *recorder) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	r := newRecorder()
	s, err := server.Start(context.Background(), cfg, r.emit)
	if err != nil {
		t.Fatalf("Start(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, r
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(wait))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func dialServer(t *testing.T, s *server.Server, host string) *net.TCPConn {
	t.Helper()
	return dial(t, net.JoinHostPort(host, strconv.Itoa(int(s.Addr().Port()))))
}

func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func hasIPv6(t *testing.T) bool {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func TestKindString(t *testing.T) {
	for k, want := range map[server.Kind]string{
		server.Listening: "listening", server.Connection: "connection", server.Data: "data",
		server.Write: "write", server.Close: "close", server.Error: "error", server.Kind(200): "kind(200)",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

// The notes' two servers: the full example answers "Hello from server",
// the connection-event snippet "HTTP\n\nGot your message".
func TestReply(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply []byte
		want  string
	}{
		{"full example (default reply)", nil, "Hello from server"},
		{"connection event snippet", []byte("HTTP\n\nGot your message"), "HTTP\n\nGot your message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := start(t, server.Config{Behavior: server.Reply, Reply: tc.reply})
			c := dialServer(t, s, "127.0.0.1")
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(tc.want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("client read %q, want %q", got, tc.want)
			}
			c.Close()
			r.waitKind(t, server.Close, 1)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			es := r.all()
			want := []string{"listening#0", "connection#1", "data#1", "write#1", "close#1", "close#0"}
			if g := kinds(es); !equal(g, want) {
				t.Fatalf("events %v, want %v", g, want)
			}
			clientAddr := addrPort(c.LocalAddr())
			if l := es[0]; l.Local != s.Addr() || l.Family != "IPv4" || l.NodeLocalAddress != "127.0.0.1" {
				t.Errorf("listening event %+v", l)
			}
			for _, e := range es[1:5] {
				if e.Remote != clientAddr || e.Local != s.Addr() || e.Family != "IPv4" || e.NodeRemoteAddress != "127.0.0.1" {
					t.Errorf("%v event: Local %v Remote %v Family %q Node %q; want %v %v IPv4 127.0.0.1",
						e.Kind, e.Local, e.Remote, e.Family, e.NodeRemoteAddress, s.Addr(), clientAddr)
				}
			}
			if d := es[2]; string(d.Data) != "hello" {
				t.Errorf("data %q, want hello", d.Data)
			}
			if w := es[3]; string(w.Data) != tc.want || w.Err != nil {
				t.Errorf("write %q err %v, want %q", w.Data, w.Err, tc.want)
			}
			if cl := es[4]; cl.Detail != server.DetailPeerFIN || cl.Err != nil {
				t.Errorf("close: detail %q err %v, want %q and nil", cl.Detail, cl.Err, server.DetailPeerFIN)
			}
			for i := 1; i < len(es); i++ {
				if es[i].Time.Before(es[i-1].Time) {
					t.Errorf("event %d (%v) is earlier than event %d (%v)", i, es[i].Kind, i-1, es[i-1].Kind)
				}
			}
		})
	}
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

// What Node v20.20.2 printed on this machine for the same sockets (a
// net.createServer callback printing socket.remoteAddress, remoteFamily
// and address(), with net.connect as the client):
//
//	listen "::",        client 127.0.0.1: remoteAddress "::ffff:127.0.0.1", remoteFamily "IPv6", address() {"::ffff:127.0.0.1", IPv6}
//	listen (no host),   client 127.0.0.1: the same: Node's default is dual-stack "::"
//	listen "127.0.0.1", client 127.0.0.1: "127.0.0.1", "IPv4", {"127.0.0.1", IPv4}
//	listen "::1",       client ::1:       "::1", "IPv6", {"::1", IPv6}
//
// The client side (net.connect to 127.0.0.1) saw plain 127.0.0.1 / IPv4 in
// every case: the mapping exists only in the dual-stack server's socket API.
func TestAddressFamilies(t *testing.T) {
	ipv6 := hasIPv6(t)
	for _, tc := range []struct {
		name, listen, network, dial string
		needIPv6                    bool
		// Listening event
		lnNode, lnFamily string
		// connection event
		nodeRemote, nodeLocal, family string
		// an IPv6 client must be refused: the listener is IPv4 only
		v6Refused bool
	}{
		{name: "IPv4 listener", listen: "127.0.0.1:0", dial: "127.0.0.1",
			lnNode: "127.0.0.1", lnFamily: "IPv4", nodeRemote: "127.0.0.1", nodeLocal: "127.0.0.1", family: "IPv4", v6Refused: true},
		{name: "0.0.0.0 is IPv4 only, as in Node", listen: "0.0.0.0:0", dial: "127.0.0.1",
			lnNode: "0.0.0.0", lnFamily: "IPv4", nodeRemote: "127.0.0.1", nodeLocal: "127.0.0.1", family: "IPv4", v6Refused: true},
		{name: "dual-stack [::], IPv4 client", listen: "[::]:0", dial: "127.0.0.1", needIPv6: true,
			lnNode: "::", lnFamily: "IPv6", nodeRemote: "::ffff:127.0.0.1", nodeLocal: "::ffff:127.0.0.1", family: "IPv6"},
		{name: "dual-stack :port, IPv4 client", listen: ":0", dial: "127.0.0.1", needIPv6: true,
			lnNode: "::", lnFamily: "IPv6", nodeRemote: "::ffff:127.0.0.1", nodeLocal: "::ffff:127.0.0.1", family: "IPv6"},
		{name: "dual-stack [::], IPv6 client", listen: "[::]:0", dial: "::1", needIPv6: true,
			lnNode: "::", lnFamily: "IPv6", nodeRemote: "::1", nodeLocal: "::1", family: "IPv6"},
		{name: "IPv6 listener [::1]", listen: "[::1]:0", dial: "::1", needIPv6: true,
			lnNode: "::1", lnFamily: "IPv6", nodeRemote: "::1", nodeLocal: "::1", family: "IPv6"},
		{name: "tcp6 [::] is IPv6 only", listen: "[::]:0", network: "tcp6", dial: "::1", needIPv6: true,
			lnNode: "::", lnFamily: "IPv6", nodeRemote: "::1", nodeLocal: "::1", family: "IPv6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needIPv6 && !ipv6 {
				t.Skip("no IPv6 on loopback")
			}
			s, r := start(t, server.Config{Addr: tc.listen, Network: tc.network, Behavior: server.Silent})
			l := r.waitKind(t, server.Listening, 0)
			if l.NodeLocalAddress != tc.lnNode || l.Family != tc.lnFamily || l.Local != s.Addr() || l.Local.Port() == 0 {
				t.Errorf("listening: Local %v NodeLocalAddress %q Family %q; want %v %q %q",
					l.Local, l.NodeLocalAddress, l.Family, s.Addr(), tc.lnNode, tc.lnFamily)
			}
			c := dialServer(t, s, tc.dial)
			e := r.waitKind(t, server.Connection, 1)
			if want := addrPort(c.LocalAddr()); e.Remote != want {
				t.Errorf("Remote %v, want the client's %v", e.Remote, want)
			}
			if want := addrPort(c.RemoteAddr()); e.Local != want {
				t.Errorf("Local %v, want %v", e.Local, want)
			}
			if e.Remote.Addr().Is4In6() || e.Local.Addr().Is4In6() {
				t.Errorf("addresses not unmapped: %v %v", e.Local, e.Remote)
			}
			if e.NodeRemoteAddress != tc.nodeRemote || e.NodeLocalAddress != tc.nodeLocal || e.Family != tc.family {
				t.Errorf("Node view: remoteAddress %q address %q family %q; want %q %q %q",
					e.NodeRemoteAddress, e.NodeLocalAddress, e.Family, tc.nodeRemote, tc.nodeLocal, tc.family)
			}
			if tc.v6Refused && ipv6 {
				c6, err := net.DialTimeout("tcp", net.JoinHostPort("::1", strconv.Itoa(int(s.Addr().Port()))), wait)
				if err == nil {
					c6.Close()
					t.Errorf("an IPv6 client connected to %s listener", tc.listen)
				} else if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("IPv6 dial: %v, want connection refused", err)
				}
			}
		})
	}
}

func TestEcho(t *testing.T) {
	s, r := start(t, server.Config{Behavior: server.Echo})
	c := dialServer(t, s, "127.0.0.1")
	for _, msg := range []string{"abc", "defg\n"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
		d := r.waitKind(t, server.Data, 1)
		w := r.waitKind(t, server.Write, 1)
		if string(d.Data) != msg || string(w.Data) != msg {
			t.Fatalf("data %q write %q, want %q", d.Data, w.Data, msg)
		}
	}
}

// A silent server reads but never writes: after the client's FIN the
// server closes, and the client reads EOF with no byte before it.
func TestSilent(t *testing.T) {
	s, r := start(t, server.Config{Behavior: server.Silent})
	c := dialServer(t, s, "127.0.0.1")
	c.Write([]byte("anyone there?"))
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("client read %q, %v; want nothing, then EOF", b, err)
	}
	r.waitKind(t, server.Close, 1)
	s.Close()
	var data []byte
	for _, e := range r.all() {
		switch e.Kind {
		case server.Write:
			t.Errorf("silent server wrote %q", e.Data)
		case server.Data:
			data = append(data, e.Data...)
		}
	}
	if string(data) != "anyone there?" {
		t.Errorf("server read %q", data)
	}
}

// The backlog lesson: nobody calls Accept, yet the kernel completes the
// handshake and even takes the client's data.
func TestNeverAccept(t *testing.T) {
	s, r := start(t, server.Config{Behavior: server.NeverAccept})
	c := dialServer(t, s, "127.0.0.1")
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatalf("write to a never-accepted connection: %v", err)
	}
	if n := s.Conns(); n != 0 {
		t.Errorf("Conns() = %d, want 0", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if g, want := kinds(r.all()), []string{"listening#0", "close#0"}; !equal(g, want) {
		t.Errorf("events %v, want %v", g, want)
	}
	// Closing a listener resets the connections still in its accept queue.
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read after the listener closed: %v, want ECONNRESET", err)
	}
}

// The flow-control lesson: a server that never reads, with a small receive
// buffer, stops the client's writes. The write deadline only bounds a write
// that would otherwise block for ever; the result does not depend on it.
func TestNoRead(t *testing.T) {
	s, r := start(t, server.Config{Behavior: server.NoRead, ReceiveBuffer: 4096})
	c := dialServer(t, s, "127.0.0.1")
	r.waitKind(t, server.Connection, 1)
	// Far more than the server's receive buffer plus the client's largest
	// send buffer (net.ipv4.tcp_wmem's maximum is 4 MiB by default).
	p := make([]byte, 32<<20)
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := c.Write(p)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n >= len(p) {
		t.Fatalf("write took %d of %d bytes, err %v; want it blocked by the closed window", n, len(p), err)
	}
	t.Logf("the kernel took %d bytes before the window closed", n)
	if got := s.Conns(); got != 1 {
		t.Errorf("Conns() = %d, want 1", got)
	}
	s.Close()
	for _, e := range r.all() {
		if e.Kind == server.Data {
			t.Fatalf("a NoRead server emitted data (%d bytes)", len(e.Data))
		}
	}
	cl := ofConn(r.all(), 1)
	if last := cl[len(cl)-1]; last.Kind != server.Close || last.Detail != server.DetailByServer {
		t.Errorf("last event %v %q, want close %q", last.Kind, last.Detail, server.DetailByServer)
	}
}

func TestSlowRead(t *testing.T) {
	const size = 100
	s, r := start(t, server.Config{Behavior: server.SlowRead, ReadSize: size, ReadInterval: time.Millisecond})
	c := dialServer(t, s, "127.0.0.1")
	payload := bytes.Repeat([]byte("0123456789"), 100)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	cl := r.waitKind(t, server.Close, 1)
	if cl.Detail != server.DetailPeerFIN {
		t.Errorf("close detail %q", cl.Detail)
	}
	var got []byte
	reads := 0
	for _, e := range ofConn(r.all(), 1) {
		if e.Kind == server.Data {
			reads++
			if len(e.Data) > size {
				t.Errorf("a read of %d bytes, want at most %d", len(e.Data), size)
			}
			got = append(got, e.Data...)
		}
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("server read %d bytes, want the %d written", len(got), len(payload))
	}
	if reads < len(payload)/size {
		t.Errorf("%d reads", reads)
	}
}

// Closing from the server side, politely (FIN) or not (RST), and the
// client sending RST.
func TestServerSideClose(t *testing.T) {
	for _, tc := range []struct {
		name      string
		act       func(s *server.Server, c *net.TCPConn, id uint64) error
		clientErr error // what the client's read returns; nil: the client closed, no read
		detail    string
		wantErr   error // the Close event's Err
	}{
		{"CloseConn sends FIN", func(s *server.Server, _ *net.TCPConn, id uint64) error { return s.CloseConn(id) },
			io.EOF, server.DetailByServer, nil},
		{"AbortConn sends RST", func(s *server.Server, _ *net.TCPConn, id uint64) error { return s.AbortConn(id) },
			syscall.ECONNRESET, server.DetailAbortServer, nil},
		{"client aborts", func(_ *server.Server, c *net.TCPConn, _ uint64) error {
			c.SetLinger(0)
			return c.Close()
		}, nil, server.DetailPeerRST, syscall.ECONNRESET},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := start(t, server.Config{Behavior: server.Silent})
			c := dialServer(t, s, "127.0.0.1")
			id := r.waitKind(t, server.Connection, 1).Conn
			if err := tc.act(s, c, id); err != nil {
				t.Fatal(err)
			}
			if tc.clientErr != nil {
				if _, err := c.Read(make([]byte, 1)); !errors.Is(err, tc.clientErr) {
					t.Errorf("client read: %v, want %v", err, tc.clientErr)
				}
			}
			e := r.waitKind(t, server.Close, id)
			if e.Detail != tc.detail || !errors.Is(e.Err, tc.wantErr) || (tc.wantErr == nil) != (e.Err == nil) {
				t.Errorf("close event: detail %q err %v; want %q %v", e.Detail, e.Err, tc.detail, tc.wantErr)
			}
			for _, f := range []func(uint64) error{s.CloseConn, s.AbortConn} {
				if err := f(id); !errors.Is(err, server.ErrNoConn) {
					t.Errorf("closing a closed connection: %v, want ErrNoConn", err)
				}
			}
			if n := s.Conns(); n != 0 {
				t.Errorf("Conns() = %d after the close", n)
			}
			s.Close()
			closes := 0
			for _, e := range ofConn(r.all(), id) {
				if e.Kind == server.Close {
					closes++
				}
			}
			if closes != 1 {
				t.Errorf("%d close events, want 1", closes)
			}
		})
	}
	s, _ := start(t, server.Config{})
	if err := s.CloseConn(42); !errors.Is(err, server.ErrNoConn) {
		t.Errorf("CloseConn(42) = %v, want ErrNoConn", err)
	}
}

// Half-close: the client's FIN makes the server close too (Node's default
// allowHalfOpen: false), and the client's read then sees EOF.
func TestClientHalfClose(t *testing.T) {
	s, r := start(t, server.Config{Behavior: server.Reply})
	c := dialServer(t, s, "127.0.0.1")
	c.Write([]byte("bye"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "Hello from server" {
		t.Fatalf("client read %q, %v; want the reply, then EOF", got, err)
	}
	e := r.waitKind(t, server.Close, 1)
	if e.Detail != server.DetailPeerFIN || e.Err != nil {
		t.Errorf("close event %q %v", e.Detail, e.Err)
	}
}

func TestCloseAfterReply(t *testing.T) {
	s, r := start(t, server.Config{Behavior: server.Reply, Reply: []byte("bye"), CloseAfterReply: true})
	c := dialServer(t, s, "127.0.0.1")
	c.Write([]byte("hi"))
	if got, err := io.ReadAll(c); err != nil || string(got) != "bye" {
		t.Fatalf("client read %q, %v; want bye, then EOF", got, err)
	}
	if e := r.waitKind(t, server.Close, 1); e.Detail != server.DetailByServer {
		t.Errorf("close detail %q", e.Detail)
	}
}

func TestAddrInUse(t *testing.T) {
	s, _ := start(t, server.Config{})
	port := strconv.Itoa(int(s.Addr().Port()))
	addrs := []string{s.Addr().String()}
	if hasIPv6(t) {
		addrs = append(addrs, "[::]:"+port) // dual-stack includes 127.0.0.1
	}
	for _, a := range addrs {
		s2, err := server.Start(context.Background(), server.Config{Addr: a}, nil)
		if err == nil {
			s2.Close()
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("second Start on %s: %v, want EADDRINUSE", a, err)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []server.Config{
		{Addr: "no-port"},
		{Addr: "127.0.0.1:99999"},
		{Addr: "127.0.0.1:-1"},
		{Addr: "[::1]:0", Network: "tcp4"},
		{Addr: "127.0.0.1:0", Network: "udp"},
		{Addr: "127.0.0.1:0", ReadSize: -1},
		{Addr: "127.0.0.1:0", Behavior: 99},
	} {
		s, err := server.Start(context.Background(), cfg, nil)
		if err == nil {
			s.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}

func TestCloseWaitsAndIsIdempotent(t *testing.T) {
	before := runtime.NumGoroutine()
	var servers []*server.Server
	var recs []*recorder
	for _, b := range []server.Behavior{server.Reply, server.NoRead, server.SlowRead, server.NeverAccept} {
		r := newRecorder()
		s, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", Behavior: b, ReadInterval: time.Hour}, r.emit)
		if err != nil {
			t.Fatal(err)
		}
		servers, recs = append(servers, s), append(recs, r)
		for range 3 {
			c := dialServer(t, s, "127.0.0.1")
			c.Write([]byte("x"))
		}
		if b != server.NeverAccept {
			for id := uint64(1); id <= 3; id++ {
				r.waitKind(t, server.Connection, id)
			}
		}
	}
	for i, s := range servers {
		for range 2 {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
		if n := s.Conns(); n != 0 {
			t.Errorf("Conns() = %d after Close", n)
		}
		es := recs[i].all()
		for id := uint64(1); id <= 3 && i < 3; id++ {
			ce := ofConn(es, id)
			if len(ce) < 2 || ce[0].Kind != server.Connection || ce[len(ce)-1].Kind != server.Close {
				t.Errorf("server %d conn %d: events %v", i, id, kinds(ce))
				continue
			}
			for _, e := range ce[:len(ce)-1] {
				if e.Kind == server.Close {
					t.Errorf("server %d conn %d: two close events", i, id)
				}
			}
		}
	}
	// A goroutine that called wg.Done may still be on its way out, so allow
	// it a moment; Close itself already waited for all of them.
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestContextCancelStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	s, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", Behavior: server.Silent}, r.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dialServer(t, s, "127.0.0.1")
	r.waitKind(t, server.Connection, 1)
	cancel()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read after cancel: %v, want EOF", err)
	}
	if e := r.waitKind(t, server.Close, 1); e.Detail != server.DetailByServer {
		t.Errorf("close detail %q", e.Detail)
	}
	r.waitKind(t, server.Close, 0)
	if _, err := net.Dial("tcp", s.Addr().String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after cancel: %v, want refused", err)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

// Many clients at once: numbers are unique and in accept order, and each
// connection's events keep their order. Mostly a job for -race.
func TestConcurrentClients(t *testing.T) {
	const n = 20
	s, r := start(t, server.Config{Behavior: server.Echo})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", s.Addr().String(), wait)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(wait))
			msg := []byte("client " + strconv.Itoa(i))
			c.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
				errs <- errors.New("echo " + string(got) + ": " + errText(err))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for id := uint64(1); id <= n; id++ {
		r.waitKind(t, server.Close, id)
	}
	s.Close()
	es := r.all()
	var lastAccept time.Time
	for id := uint64(1); id <= n; id++ {
		ce := ofConn(es, id)
		if g, want := kinds(ce), []string{"connection#" + strconv.FormatUint(id, 10), "data#" + strconv.FormatUint(id, 10),
			"write#" + strconv.FormatUint(id, 10), "close#" + strconv.FormatUint(id, 10)}; !equal(g, want) {
			t.Errorf("conn %d: %v, want %v", id, g, want)
			continue
		}
		if ce[0].Time.Before(lastAccept) {
			t.Errorf("conn %d accepted before conn %d", id, id-1)
		}
		lastAccept = ce[0].Time
	}
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
