package netlab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newLab makes a lab for one test and closes it when the test ends. It
// skips the test only when the process may not create namespaces (not
// root); any other failure fails it.
func newLab(t testing.TB, cfg Config) *Lab {
	t.Helper()
	lab, err := New(context.Background(), cfg)
	if errors.Is(err, ErrPermission) {
		t.Skipf("needs root: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	return lab
}

// serve listens on host:0 in the server namespace and runs handle for each
// connection in its own goroutine, until the test ends (then it closes the
// listener and the connections and waits for the goroutines).
func serve(t testing.TB, lab *Lab, host netip.Addr, handle func(*net.TCPConn)) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	err := lab.InServer(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(host, 0).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { handle(c.(*net.TCPConn)) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func echo(c *net.TCPConn) { io.Copy(c, c) }

// drain reads until EOF, then writes back how many bytes it read and their
// SHA-256, and closes.
func drain(c *net.TCPConn) {
	defer c.Close()
	h := sha256.New()
	n, _ := io.Copy(h, c)
	fmt.Fprintf(c, "%d %x", n, h.Sum(nil))
}

// dial connects from the client namespace.
func dial(lab *Lab, to netip.AddrPort, timeout time.Duration) (*net.TCPConn, error) {
	var c net.Conn
	err := lab.InClient(func() (err error) {
		c, err = net.DialTimeout("tcp", to.String(), timeout)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

func mustDial(t testing.TB, lab *Lab, to netip.AddrPort) *net.TCPConn {
	t.Helper()
	c, err := dial(lab, to, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads as many bytes back.
func roundTrip(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
}

// send writes data, half-closes, and checks what drain answered.
func send(t testing.TB, c *net.TCPConn, data []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %x", len(data), sha256.Sum256(data)); string(reply) != want {
		t.Fatalf("server got %q, want %q", reply, want)
	}
}

func tcpInfo(t testing.TB, c *net.TCPConn) *unix.TCPInfo {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
	return info
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// eventLog collects the lab's events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) emit(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

func TestEcho(t *testing.T) {
	lab := newLab(t, Config{})
	for _, tc := range []struct {
		name           string
		client, server netip.Addr
	}{
		{"IPv4", ClientAddr(), ServerAddr()},
		{"IPv6", ClientAddr6(), ServerAddr6()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.server.Is6() && !lab.HasIPv6() {
				t.Skip("the lab has no IPv6 here")
			}
			peer := make(chan netip.AddrPort, 1)
			to := serve(t, lab, tc.server, func(c *net.TCPConn) {
				peer <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
				echo(c)
			})
			c := mustDial(t, lab, to)
			roundTrip(t, c, "hello through the lab")
			if got := (<-peer).Addr(); got != tc.client {
				t.Errorf("server saw the client as %v, want %v", got, tc.client)
			}
		})
	}
	// A packet the link has received may still be on its way out (the
	// last ACK of a close): wait until the link is idle before counting.
	st := lab.Stats()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); st = lab.Stats() {
		if st.ClientToServer.Forwarded == st.ClientToServer.Received && st.ServerToClient.Forwarded == st.ServerToClient.Received {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range []Counters{st.ClientToServer, st.ServerToClient} {
		if c.Forwarded < 4 || c.Dropped() != 0 || c.Forwarded != c.Received {
			t.Errorf("counters %+v", c)
		}
	}
}

// TestLabIsolated: a lab's namespace has only lo and tun0, and the host
// has none of the lab's addresses.
func TestLabIsolated(t *testing.T) {
	lab := newLab(t, Config{})
	var names []string
	err := lab.InServer(func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, " ") != "lo tun0" {
		t.Errorf("server namespace interfaces %v, want lo tun0", names)
	}
	// The host knows nothing of the lab's addresses. (No dial from the
	// host to check it: with the host's default route the SYN would leave
	// the machine.)
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		// Only the lab's own addresses count: a host may well sit on a
		// documentation network (this machine's eth0 is 192.0.2.2/24),
		// which the namespaces, having no route to the host, never see.
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			for _, own := range []netip.Addr{ClientAddr(), ServerAddr(), ClientAddr6(), ServerAddr6()} {
				if p.Addr() == own {
					t.Errorf("the host has the lab's address %v", own)
				}
			}
		}
	}
}

func TestDelayRTT(t *testing.T) {
	const oneWay = 50 * time.Millisecond
	lab := newLab(t, Config{Link: Symmetric(Impairment{Delay: oneWay})})
	to := serve(t, lab, ServerAddr(), echo)
	start := time.Now()
	c := mustDial(t, lab, to)
	handshake := time.Since(start)
	if handshake < 2*oneWay {
		t.Errorf("handshake took %v, want ≥ %v (SYN and SYN+ACK each delayed)", handshake, 2*oneWay)
	}
	best := time.Hour
	var rtts []time.Duration
	for range 5 {
		start := time.Now()
		roundTrip(t, c, "ping")
		rtt := time.Since(start)
		rtts = append(rtts, rtt)
		best = min(best, rtt)
	}
	t.Logf("handshake %v, request/response RTTs %v, kernel srtt %v", handshake, rtts,
		time.Duration(tcpInfo(t, c).Rtt)*time.Microsecond)
	// The best of five is the link's; the others may carry the machine's
	// load.
	if best < 2*oneWay || best >= 300*time.Millisecond {
		t.Errorf("RTT %v, want in [100ms, 300ms)", best)
	}
	if d := lab.Stats().ClientToServer.Delayed; d < 6 {
		t.Errorf("client→server delayed %d packets, want ≥ 6", d)
	}
}

func TestDropThirdDataSegmentIsRetransmitted(t *testing.T) {
	var log eventLog
	lab := newLab(t, Config{
		Link: Link{Rules: []Rule{DropNth(ClientToServer, MatchData, 3)}},
		Emit: log.emit,
	})
	to := serve(t, lab, ServerAddr(), drain)
	c := mustDial(t, lab, to)
	send(t, c, pattern(256<<10))
	info := tcpInfo(t, c)
	if info.Total_retrans < 1 {
		t.Errorf("client's tcpi_total_retrans = %d, want ≥ 1", info.Total_retrans)
	}
	st := lab.Stats()
	if st.ClientToServer.DroppedByRule != 1 || st.RuleHits[0] != 1 {
		t.Errorf("dropped %d by rule, hits %v; want 1", st.ClientToServer.DroppedByRule, st.RuleHits)
	}
	events := log.all()
	if len(events) != 1 || events[0].Kind != Dropped || events[0].Rule != 0 || events[0].Packet.PayloadLen == 0 {
		t.Fatalf("events %v, want the one dropped data segment", events)
	}
	t.Logf("%v; client retransmitted %d segment(s)", events[0], info.Total_retrans)
}

func TestDropEverySYNTimesOut(t *testing.T) {
	var log eventLog
	lab := newLab(t, Config{
		Link: Link{Rules: []Rule{DropAll(ClientToServer, MatchSYN)}},
		Emit: log.emit,
	})
	to := serve(t, lab, ServerAddr(), echo)
	start := time.Now()
	c, err := dial(lab, to, 3500*time.Millisecond)
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("dial succeeded with every SYN dropped")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial error %v, want a timeout", err)
	}
	if took < 3*time.Second {
		t.Errorf("dial gave up after %v", took)
	}
	st := lab.Stats()
	if st.ClientToServer.DroppedByRule < 2 {
		t.Errorf("the link dropped %d SYNs, want ≥ 2", st.ClientToServer.DroppedByRule)
	}
	for _, e := range log.all() {
		if e.Kind != Dropped || e.Packet.Flags != FlagSYN || e.Direction != ClientToServer {
			t.Errorf("unexpected event %v", e)
		}
	}
	t.Logf("dial failed after %v: %v; %d SYNs dropped", took, err, st.ClientToServer.DroppedByRule)

	// The lesson's next step: the link heals, the dial works.
	if err := lab.SetLink(Link{}); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, mustDial(t, lab, to), "now it answers")
}

func TestLossAllOrNothing(t *testing.T) {
	lab := newLab(t, Config{Link: Link{ClientToServer: Impairment{Loss: 1}}})
	to := serve(t, lab, ServerAddr(), echo)
	if c, err := dial(lab, to, 1500*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("dial succeeded with loss 1")
	}
	lost := lab.Stats().ClientToServer.DroppedByLoss
	if lost < 1 {
		t.Errorf("loss 1 dropped %d packets", lost)
	}
	if err := lab.SetLink(Link{}); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, mustDial(t, lab, to), "no loss")
	if st := lab.Stats().ClientToServer; st.DroppedByLoss != lost {
		t.Errorf("loss 0 dropped %d more", st.DroppedByLoss-lost)
	}
}

func TestRateLimitThroughput(t *testing.T) {
	const rate = 1_000_000 // bytes per second
	lab := newLab(t, Config{Link: Link{ClientToServer: Impairment{Rate: rate}}})
	to := serve(t, lab, ServerAddr(), drain)
	c := mustDial(t, lab, to)
	data := pattern(1 << 20)
	start := time.Now()
	send(t, c, data)
	took := time.Since(start)
	got := float64(len(data)) / took.Seconds()
	st := lab.Stats().ClientToServer
	t.Logf("1 MiB in %v: %.0f B/s of data at a %d B/s limit; %d packets dropped by the queue", took, got, rate, st.DroppedByRate)
	// Data goodput is a little under the rate (IP and TCP headers are
	// counted by the limit); 20% either way.
	if got < 0.8*rate || got > 1.2*rate {
		t.Errorf("throughput %.0f B/s, want within 20%% of %d", got, rate)
	}
}

func TestDuplicateAndReorderStillDeliver(t *testing.T) {
	lab := newLab(t, Config{Link: Link{
		ServerToClient: Impairment{Duplicate: 0.5, Reorder: 0.1},
		ClientToServer: Impairment{Duplicate: 0.2},
		Rules:          []Rule{{Direction: ClientToServer, Match: MatchData, Nth: 2, Count: 3, Action: HoldBack}},
		Seed:           7,
	}})
	to := serve(t, lab, ServerAddr(), drain)
	send(t, mustDial(t, lab, to), pattern(200<<10))
	st := lab.Stats()
	if st.ClientToServer.Duplicated == 0 || st.ServerToClient.Duplicated == 0 {
		t.Errorf("nothing duplicated: %+v", st)
	}
	if st.ClientToServer.Reordered == 0 || st.RuleHits[0] != 3 {
		t.Errorf("hold-back rule: reordered %d, hits %v", st.ClientToServer.Reordered, st.RuleHits)
	}
}

func TestChangingTheLinkMidConnection(t *testing.T) {
	lab := newLab(t, Config{})
	to := serve(t, lab, ServerAddr(), echo)
	c := mustDial(t, lab, to)
	roundTrip(t, c, "fast")
	if err := lab.SetLink(Symmetric(Impairment{Delay: 40 * time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	roundTrip(t, c, "slow")
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("round trip after adding 40 ms each way took %v", d)
	}
	if got := lab.Link().ClientToServer.Delay; got != 40*time.Millisecond {
		t.Errorf("Link() delay %v", got)
	}
	if err := lab.SetLink(Link{ClientToServer: Impairment{Loss: 2}}); err == nil {
		t.Error("loss 2 accepted")
	}
}

func TestInNamespacePanicsInCaller(t *testing.T) {
	lab := newLab(t, Config{})
	defer func() {
		if v := recover(); v != "boom" {
			t.Errorf("recovered %v, want boom", v)
		}
		// The namespace thread survived the panic.
		if err := lab.InServer(func() error { return nil }); err != nil {
			t.Error(err)
		}
	}()
	lab.InServer(func() error { panic("boom") })
}

// hostState is what the lab must never change on the host: interfaces,
// named namespaces, firewall rules.
func hostState(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		fmt.Fprintf(&b, "link %d %s\n", i.Index, i.Name)
	}
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			fmt.Fprintf(&b, "netns %s\n", e.Name())
		}
	}
	// The namespaces set these for themselves; the host must keep its own.
	for _, name := range []string{"net/ipv4/ip_unprivileged_port_start", "net/ipv6/conf/default/addr_gen_mode", "net/ipv6/conf/all/addr_gen_mode"} {
		v, _ := os.ReadFile("/proc/sys/" + name)
		fmt.Fprintf(&b, "sysctl %s = %s", name, v)
	}
	for _, cmd := range [][]string{{"iptables", "-S"}, {"ip6tables", "-S"}, {"nft", "list", "ruleset"}} {
		if out, err := runTool(cmd...); err == nil {
			fmt.Fprintf(&b, "%s:\n%s", cmd[0], out)
		}
	}
	return b.String()
}

// namespaceInodes names the lab's namespaces by inode.
func namespaceInodes(t testing.TB, lab *Lab) []uint64 {
	t.Helper()
	var inodes []uint64
	for _, ns := range []*namespace{lab.client, lab.server} {
		var st unix.Stat_t
		if err := unix.Fstat(int(ns.nsFile.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		inodes = append(inodes, st.Ino)
	}
	return inodes
}

// holders lists the threads and open files on the machine that refer to
// one of the namespaces.
func holders(inodes []uint64) []string {
	want := map[string]bool{}
	for _, ino := range inodes {
		want[fmt.Sprintf("net:[%d]", ino)] = true
	}
	var found []string
	for _, pattern := range []string{"/proc/[0-9]*/task/[0-9]*/ns/net", "/proc/[0-9]*/fd/*"} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			if link, err := os.Readlink(p); err == nil && want[link] {
				found = append(found, p)
			}
		}
	}
	return found
}

// waitGone waits until nothing holds the namespaces: a thread that ends
// after its goroutine returned takes a moment to leave /proc.
func waitGone(t testing.TB, inodes []uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := holders(inodes)
		if len(h) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespaces %v still held by %v", inodes, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkHost(t testing.TB, before string) {
	t.Helper()
	if after := hostState(t); after != before {
		t.Errorf("host changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	before := hostState(t)
	lab, err := New(context.Background(), Config{Link: Symmetric(Impairment{Delay: 5 * time.Millisecond})})
	if errors.Is(err, ErrPermission) {
		t.Skipf("needs root: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	inodes := namespaceInodes(t, lab)
	if h := holders(inodes); len(h) < 2 {
		t.Fatalf("holders of the live lab: %v", h)
	}
	if after := hostState(t); after != before {
		t.Errorf("a running lab changed the host:\n%s\nvs\n%s", before, after)
	}
	func() {
		// Sockets hold their namespace: the test closes its own before
		// checking that the namespaces are gone.
		var ln net.Listener
		if err := lab.InServer(func() (err error) { ln, err = net.Listen("tcp", "198.51.100.1:4000"); return }); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := dial(lab, netip.MustParseAddrPort("198.51.100.1:4000"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}()
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lab.InClient(func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("InClient after Close: %v, want ErrClosed", err)
	}
	lab.Close() // twice is fine
	waitGone(t, inodes)
	checkHost(t, before)
}

func TestContextEndsTheLab(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	lab, err := New(ctx, Config{})
	if errors.Is(err, ErrPermission) {
		t.Skipf("needs root: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for lab.InClient(func() error { return nil }) != ErrClosed {
		if time.Now().After(deadline) {
			t.Fatal("lab still running after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	lab.Close()
}

func TestErrorMessagesAreOneLine(t *testing.T) {
	for _, err := range []error{
		unshareError(unix.EPERM),
		unshareError(unix.EINVAL),
		&setupError{kind: ErrUnsupported, what: "no TUN device: /dev/net/tun is missing (modprobe tun)", err: unix.ENOENT},
	} {
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q has a newline", err)
		}
	}
	if err := unshareError(unix.EPERM); !errors.Is(err, ErrPermission) || errors.Is(err, ErrUnsupported) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("%v: wrong kind", err)
	}
	if err := unshareError(unix.EINVAL); !errors.Is(err, ErrUnsupported) {
		t.Errorf("%v: wrong kind", err)
	}
	if !bytes.Contains([]byte(unshareError(unix.EPERM).Error()), []byte("needs root")) {
		t.Error("the permission error does not say root is needed")
	}
}

// runTool runs a host tool that only reads (iptables -S, nft list); an
// absent tool is an error the caller skips.
func runTool(args ...string) ([]byte, error) {
	if _, err := exec.LookPath(args[0]); err != nil {
		return nil, err
	}
	return exec.Command(args[0], args[1:]...).CombinedOutput()
}

// A packet capture opened inside a namespace sees that namespace's tun0 as
// raw IP. libpcap opens an AF_PACKET socket; so does this test, without
// libpcap.
func TestCaptureInsideNamespace(t *testing.T) {
	lab := newLab(t, Config{})
	// ETH_P_ALL in network byte order, as AF_PACKET wants it.
	allProtocols := binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, unix.ETH_P_ALL))
	fd := -1
	err := lab.InServer(func() (err error) {
		ifi, err := net.InterfaceByName(TUNName)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(allProtocols))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: allProtocols, Ifindex: ifi.Index})
	})
	if fd >= 0 {
		defer unix.Close(fd)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5}); err != nil {
		t.Fatal(err)
	}
	to := serve(t, lab, ServerAddr(), echo)
	roundTrip(t, mustDial(t, lab, to), "captured")
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("no SYN captured on the server's tun0: %v", err)
		}
		var p Packet
		if parsePacket(buf[:n], &p) && p.Flags == FlagSYN && p.Dst == to {
			t.Logf("captured in the server namespace: %v", p)
			return
		}
	}
}
