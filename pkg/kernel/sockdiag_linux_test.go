package kernel

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// addrPort is a socket address as the kernel reports it: net gives IPv4
// addresses in their 16-byte form, which an AF_INET socket does not have.
func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// listenTCP listens on address with net, closing the listener when the
// test ends.
func listenTCP(t *testing.T, network, address string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// waitSockets polls Sockets until done holds, or fails the test.
func waitSockets(t *testing.T, filter Filter, what string, done func([]Socket) bool) []Socket {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sockets, err := Sockets(filter)
		if err != nil {
			t.Fatal(err)
		}
		if done(sockets) {
			return sockets
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s; sockets: %+v", what, sockets)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func findSocket(sockets []Socket, state State, local netip.AddrPort) (Socket, bool) {
	for _, s := range sockets {
		if s.State == state && s.Local == local {
			return s, true
		}
	}
	return Socket{}, false
}

// TestBytecodeFiltersInTheKernel asks the kernel itself, without the
// filter Sockets applies after it, for the sockets on some ports.
func TestBytecodeFiltersInTheKernel(t *testing.T) {
	listenTCP(t, "tcp4", "127.0.0.1:4700")
	listenTCP(t, "tcp4", "127.0.0.1:4701")
	listenTCP(t, "tcp4", "127.0.0.1:4702")
	listenTCP(t, "tcp6", "[::1]:4701")
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	tests := []struct {
		family uint8
		ports  []uint16
		want   []uint16 // the listeners' ports found
	}{
		{unix.AF_INET, []uint16{4700}, []uint16{4700}},
		{unix.AF_INET, []uint16{4700, 4702}, []uint16{4700, 4702}},
		{unix.AF_INET, []uint16{4799, 4701, 4798}, []uint16{4701}},
		{unix.AF_INET6, []uint16{4700, 4701}, []uint16{4701}},
		{unix.AF_INET, []uint16{4799}, nil},
	}
	for i, tt := range tests {
		sockets, err := dumpSockets(fd, uint32(i+1), tt.family, ^uint32(0), portFilterBytecode(tt.ports))
		if err != nil {
			t.Fatalf("ports %v: %v", tt.ports, err)
		}
		var found []uint16
		for _, s := range sockets {
			if !slices.Contains(tt.ports, s.Local.Port()) && !slices.Contains(tt.ports, s.Remote.Port()) {
				t.Errorf("ports %v: the kernel let through %s → %s", tt.ports, s.Local, s.Remote)
			}
			if s.State == Listen {
				found = append(found, s.Local.Port())
			}
		}
		slices.Sort(found)
		if !slices.Equal(found, tt.want) {
			t.Errorf("family %d, ports %v: listeners on %v, want %v", tt.family, tt.ports, found, tt.want)
		}
	}
}

// TestSocketsLikeSS compares Sockets with what ss -tanmi prints for the
// same sockets, IPv4 and IPv6.
func TestSocketsLikeSS(t *testing.T) {
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Fatal("this test compares with ss: install iproute2 (scripts/setup.sh --test does)")
	}
	tests := []struct {
		name    string
		network string
		address string
	}{
		{"IPv4", "tcp4", "127.0.0.1:4760"},
		{"IPv6", "tcp6", "[::1]:4761"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listenTCP(t, tt.network, tt.address)
			port := uint16(ln.Addr().(*net.TCPAddr).Port)
			client, err := net.Dial(tt.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			server, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()
			// Five bytes the server does not read: its Recv-Q.
			if _, err := client.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			filter := Filter{Ports: []uint16{port}}
			sockets := waitSockets(t, filter, "the server's Recv-Q at 5", func(s []Socket) bool {
				srv, ok := findSocket(s, Established, addrPort(server.LocalAddr()))
				return ok && srv.RecvQueue == 5
			})
			if len(sockets) != 3 {
				t.Fatalf("%d sockets, want the listener and two ends: %+v", len(sockets), sockets)
			}

			out, err := exec.Command(ss, "-H", "-tanmi", "( sport = :"+strconv.Itoa(int(port))+" or dport = :"+strconv.Itoa(int(port))+" )").Output()
			if err != nil {
				t.Fatalf("ss: %v", err)
			}
			lines := parseSS(t, string(out))
			if len(lines) != len(sockets) {
				t.Fatalf("ss lists %d sockets, Sockets %d:\n%s", len(lines), len(sockets), out)
			}
			for _, s := range sockets {
				key := s.Local.String() + " " + ssPeer(s.Remote)
				line, ok := lines[key]
				if !ok {
					t.Errorf("%s: not in ss's output:\n%s", key, out)
					continue
				}
				recvQ, sendQ := s.RecvQueue, s.SendQueue
				if s.State == Listen {
					recvQ, sendQ = s.AcceptQueue, s.Backlog
				}
				if line.state != ssStateName(s.State) || line.recvQ != recvQ || line.sendQ != sendQ {
					t.Errorf("%s: Sockets says %s %d %d, ss %s %d %d", key, ssStateName(s.State), recvQ, sendQ, line.state, line.recvQ, line.sendQ)
				}
				if s.State == Established {
					if s.Info == nil {
						t.Errorf("%s: no tcp_info", key)
						continue
					}
					if s.Info.SndCwnd != line.cwnd || s.Info.RTT <= 0 || s.Info.RTT > time.Second {
						t.Errorf("%s: cwnd %d rtt %v; ss says cwnd %d", key, s.Info.SndCwnd, s.Info.RTT, line.cwnd)
					}
					if !s.Info.HasRcvWnd || s.Info.RcvWnd == 0 || !s.Info.HasSndWnd || s.Info.SndWnd != line.sndWnd {
						t.Errorf("%s: rcv_wnd %d (%v), snd_wnd %d (%v); ss says snd_wnd %d", key, s.Info.RcvWnd, s.Info.HasRcvWnd, s.Info.SndWnd, s.Info.HasSndWnd, line.sndWnd)
					}
				}
				if s.State == Listen && s.Inode == 0 {
					t.Errorf("%s: a listener without an inode", key)
				}
			}
			srv, _ := findSocket(sockets, Established, addrPort(server.LocalAddr()))
			t.Logf("server %s: Recv-Q %d, rcv_wnd %d, cwnd %d, rtt %v", srv.Local, srv.RecvQueue, srv.Info.RcvWnd, srv.Info.SndCwnd, srv.Info.RTT)
		})
	}
}

type ssLine struct {
	state        string
	recvQ, sendQ uint32
	cwnd, sndWnd uint32
}

var (
	ssCwnd   = regexp.MustCompile(`\bcwnd:(\d+)`)
	ssSndWnd = regexp.MustCompile(`\bsnd_wnd:(\d+)`)
)

// parseSS reads `ss -H -tanmi`: a line per socket (state, Recv-Q, Send-Q,
// local, peer), then an indented line of details. The key is "local peer".
func parseSS(t *testing.T, out string) map[string]ssLine {
	t.Helper()
	lines := map[string]ssLine{}
	var key string
	for _, text := range strings.Split(out, "\n") {
		if strings.TrimSpace(text) == "" {
			continue
		}
		if text[0] == ' ' || text[0] == '\t' {
			l := lines[key]
			if m := ssCwnd.FindStringSubmatch(text); m != nil {
				l.cwnd = atou32(t, m[1])
			}
			if m := ssSndWnd.FindStringSubmatch(text); m != nil {
				l.sndWnd = atou32(t, m[1])
			}
			lines[key] = l
			continue
		}
		f := strings.Fields(text)
		if len(f) < 5 {
			t.Fatalf("ss line %q", text)
		}
		key = f[3] + " " + f[4]
		lines[key] = ssLine{state: f[0], recvQ: atou32(t, f[1]), sendQ: atou32(t, f[2])}
	}
	return lines
}

func atou32(t *testing.T, s string) uint32 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

// ssPeer prints a remote address as ss does: a listener's as "0.0.0.0:*".
func ssPeer(a netip.AddrPort) string {
	if a.Port() == 0 {
		if a.Addr().Is6() {
			return "[" + a.Addr().String() + "]:*"
		}
		return a.Addr().String() + ":*"
	}
	return a.String()
}

func ssStateName(s State) string {
	switch s {
	case Established:
		return "ESTAB"
	case Close:
		return "UNCONN"
	}
	return strings.ReplaceAll(strings.ReplaceAll(s.String(), "_", "-"), "WAIT1", "WAIT-1")
}

// TestBacklog: a listener with backlog 1 that never accepts. The kernel
// completes two handshakes (it queues backlog+1), then drops the third SYN.
func TestBacklog(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 4740, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	listener := netip.MustParseAddrPort("127.0.0.1:4740")
	filter := Filter{Ports: []uint16{4740}, States: []State{Listen}}

	for i, wantQueue := range []uint32{1, 2, 2} {
		conn, err := net.DialTimeout("tcp4", listener.String(), 500*time.Millisecond)
		if i < 2 {
			if err != nil {
				t.Fatalf("dial %d: %v", i+1, err)
			}
			defer conn.Close()
		} else {
			// The queue is full: the kernel drops the SYN, the
			// client retries it after 1 s, the dial times out first.
			var netErr net.Error
			if !errors.As(err, &netErr) || !netErr.Timeout() {
				if conn != nil {
					conn.Close()
				}
				t.Fatalf("dial 3 to a full accept queue: %v, want a timeout", err)
			}
		}
		sockets := waitSockets(t, filter, "accept queue "+strconv.Itoa(int(wantQueue)), func(s []Socket) bool {
			l, ok := findSocket(s, Listen, listener)
			return ok && l.AcceptQueue == wantQueue
		})
		l, _ := findSocket(sockets, Listen, listener)
		if l.Backlog != 1 {
			t.Errorf("after dial %d: backlog %d, want 1", i+1, l.Backlog)
		}
		if len(sockets) != 1 {
			t.Errorf("filter on LISTEN returned %d sockets: %+v", len(sockets), sockets)
		}
	}
}

// TestReceiveQueueFills: a server that never reads. The client writes until
// it blocks; the server's Recv-Q grows, and the window it advertises reaches
// 0. WatchQueues reports each change once.
func TestReceiveQueueFills(t *testing.T) {
	const port = 4745
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var sockErr error
		err := c.Control(func(fd uintptr) {
			// A small buffer fills fast; accepted sockets inherit it.
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 32<<10)
		})
		return errors.Join(err, sockErr)
	}}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	var mu sync.Mutex
	var changes []QueueChange
	ctx, cancel := context.WithCancel(context.Background())
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- WatchQueues(ctx, Filter{Ports: []uint16{port}}, 10*time.Millisecond, func(c QueueChange) {
			mu.Lock()
			changes = append(changes, c)
			mu.Unlock()
		})
	}()
	defer func() {
		cancel()
		if err := <-watchErr; err != nil {
			t.Errorf("WatchQueues: %v", err)
		}
	}()

	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	serverAddr, clientAddr := addrPort(server.LocalAddr()), addrPort(client.LocalAddr())

	chunk := make([]byte, 4<<10)
	written := 0
	for {
		client.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := client.Write(chunk)
		written += n
		if err != nil {
			if !errors.Is(err, unix.ETIMEDOUT) && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
				t.Fatal(err)
			}
			break
		}
		if written > 64<<20 {
			t.Fatal("64 MiB written and the client never blocked")
		}
	}

	var serverChanges []QueueChange
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		serverChanges = serverChanges[:0]
		for _, c := range changes {
			if c.Socket.Local == serverAddr && c.Socket.State == Established {
				serverChanges = append(serverChanges, c)
			}
		}
		mu.Unlock()
		if n := len(serverChanges); n > 0 {
			last := serverChanges[n-1].Socket
			if last.Info != nil && last.Info.RcvWnd == 0 && last.RecvQueue > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server's window never reached 0; its changes: %+v", serverChanges)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Each report differs from the one before; the queue only grew.
	for i := 1; i < len(serverChanges); i++ {
		before, now := serverChanges[i-1].Socket, serverChanges[i].Socket
		if queueNumbersOf(&before) == queueNumbersOf(&now) {
			t.Errorf("report %d repeats report %d: %+v", i, i-1, now)
		}
		if now.RecvQueue < before.RecvQueue {
			t.Errorf("Recv-Q went down from %d to %d, but nobody reads", before.RecvQueue, now.RecvQueue)
		}
	}
	full := serverChanges[len(serverChanges)-1].Socket

	// Nothing moves any more: nothing more is reported for the server.
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	var later int
	for _, c := range changes {
		if c.Socket.Local == serverAddr && c.Time.After(serverChanges[len(serverChanges)-1].Time) {
			later++
		}
	}
	mu.Unlock()
	if later != 0 {
		t.Errorf("%d more reports for the server while its numbers did not change", later)
	}

	// The client holds what it could not send, and probes the zero window.
	sockets := waitSockets(t, Filter{Ports: []uint16{port}}, "the client's persist timer", func(s []Socket) bool {
		c, ok := findSocket(s, Established, clientAddr)
		return ok && c.Timer == TimerPersist
	})
	c, _ := findSocket(sockets, Established, clientAddr)
	if c.SendQueue == 0 || c.Info == nil || c.Info.SndWnd != 0 {
		t.Errorf("client: Send-Q %d, info %+v; want bytes queued and the peer's window 0", c.SendQueue, c.Info)
	}
	t.Logf("client wrote %d bytes before blocking; server Recv-Q %d, rcv_wnd %d in %d reports; client Send-Q %d, persist timer in %v",
		written, full.RecvQueue, full.Info.RcvWnd, len(serverChanges), c.SendQueue, c.TimerLeft)
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
