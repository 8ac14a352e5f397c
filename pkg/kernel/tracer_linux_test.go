//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestStateChangesClientCloses follows one connection closed by the client
// through every state the tracepoint reports, on IPv4 and IPv6.
func TestStateChangesClientCloses(t *testing.T) {
	tests := []struct {
		name    string
		network string
		address string
		port    uint16
	}{
		{"IPv4", "tcp4", "127.0.0.1", 4710},
		{"IPv6", "tcp6", "::1", 4711},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rec := openTracer(t, Options{Ports: []uint16{tt.port}})
			start := time.Now()

			beforeListen := time.Now()
			ln, err := net.Listen(tt.network, net.JoinHostPort(tt.address, strconv.Itoa(int(tt.port))))
			if err != nil {
				t.Fatal(err)
			}
			afterListen := time.Now()
			client, err := net.Dial(tt.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			server, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := client.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(server, make([]byte, 5)); err != nil {
				t.Fatal(err)
			}
			client.Close()
			if _, err := server.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("server read after the client closed: %v, want EOF", err)
			}
			server.Close()

			changes := rec.waitFor(t, 5*time.Second, "LAST_ACK→CLOSE and FIN_WAIT2→CLOSE", func(c []StateChange) bool {
				return count(c, LastAck, Close) > 0 && count(c, FinWait2, Close) > 0
			})
			ln.Close()
			changes = rec.waitFor(t, 5*time.Second, "LISTEN→CLOSE", func(c []StateChange) bool {
				return count(c, Listen, Close) > 0
			})
			end := time.Now()

			listenAddr := addrPort(ln.Addr())
			clientAddr := addrPort(client.LocalAddr())
			serverAddr := addrPort(server.LocalAddr())
			pid := uint32(os.Getpid())

			listening := find(t, changes, Close, Listen)
			if listening.Local != listenAddr || listening.PID != pid || !listening.ProcessContext || listening.Comm == "" {
				t.Errorf("CLOSE→LISTEN: local %s pid %d comm %q process %v, want %s, pid %d, a comm, process context",
					listening.Local, listening.PID, listening.Comm, listening.ProcessContext, listenAddr, pid)
			}
			// CLOCK_REALTIME, to the nanosecond: listen() made the change
			// between these two readings of the wall clock.
			if listening.Time.Before(beforeListen) || listening.Time.After(afterListen) {
				t.Errorf("CLOSE→LISTEN at %s, want between %s and %s (listen's call)",
					listening.Time.Format(time.RFC3339Nano), beforeListen.Format(time.RFC3339Nano), afterListen.Format(time.RFC3339Nano))
			}

			// Which socket each change is on, and its addresses: the
			// client's socket (C), the listener (L), and the server's
			// socket (S), which the listener created for the connection.
			type want struct {
				old, new      State
				sock          string
				local, remote netip.AddrPort
			}
			zeroPort := netip.AddrPortFrom(clientAddr.Addr(), 0) // before connect chose the port
			anyAddr := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
			if tt.network == "tcp6" {
				anyAddr = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
			}
			wants := []want{
				{Close, Listen, "L", listenAddr, anyAddr},
				{Close, SynSent, "C", zeroPort, serverAddr},
				{SynSent, Established, "C", clientAddr, serverAddr},
				{Listen, SynRecv, "S", serverAddr, clientAddr},
				{SynRecv, Established, "S", serverAddr, clientAddr},
				{Established, FinWait1, "C", clientAddr, serverAddr},
				{Established, CloseWait, "S", serverAddr, clientAddr},
				{FinWait1, FinWait2, "C", clientAddr, serverAddr},
				{FinWait2, Close, "C", clientAddr, serverAddr},
				{CloseWait, LastAck, "S", serverAddr, clientAddr},
				{LastAck, Close, "S", serverAddr, clientAddr},
				{Listen, Close, "L", listenAddr, anyAddr},
			}
			if len(changes) != len(wants) {
				t.Errorf("%d changes reported, want %d:\n%s", len(changes), len(wants), describe(changes))
			}
			sockets := map[string]uint64{}
			at := map[[2]State]time.Time{}
			for _, w := range wants {
				c := find(t, changes, w.old, w.new)
				at[[2]State{w.old, w.new}] = c.Time
				if c.Local != w.local || c.Remote != w.remote {
					t.Errorf("%s→%s: %s → %s, want %s → %s", w.old, w.new, c.Local, c.Remote, w.local, w.remote)
				}
				if id, ok := sockets[w.sock]; ok && id != c.Sock {
					t.Errorf("%s→%s on socket %x, want %x, the socket %s's other changes are on", w.old, w.new, c.Sock, id, w.sock)
				}
				sockets[w.sock] = c.Sock
				if c.Time.Before(start) || c.Time.After(end) {
					t.Errorf("%s→%s at %s, outside the test's %s…%s", w.old, w.new, c.Time.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
				}
			}
			if sockets["L"] == sockets["S"] || sockets["C"] == sockets["S"] {
				t.Errorf("sockets L %x, C %x, S %x: want three", sockets["L"], sockets["C"], sockets["S"])
			}

			// The order the protocol imposes, by timestamp (the ring
			// buffer's order may differ across CPUs).
			order := [][2][2]State{
				{{Close, Listen}, {Close, SynSent}},
				{{Close, SynSent}, {SynSent, Established}},
				{{Close, SynSent}, {Listen, SynRecv}},
				{{Listen, SynRecv}, {SynRecv, Established}},
				{{SynSent, Established}, {Established, FinWait1}},
				{{SynRecv, Established}, {Established, CloseWait}},
				{{Established, FinWait1}, {Established, CloseWait}},
				{{Established, FinWait1}, {FinWait1, FinWait2}},
				{{Established, CloseWait}, {CloseWait, LastAck}},
				{{CloseWait, LastAck}, {FinWait2, Close}},
				{{FinWait1, FinWait2}, {FinWait2, Close}},
				{{FinWait2, Close}, {LastAck, Close}},
				{{LastAck, Close}, {Listen, Close}},
			}
			for _, o := range order {
				if !at[o[0]].Before(at[o[1]]) {
					t.Errorf("%s→%s at %s, not before %s→%s at %s", o[0][0], o[0][1], at[o[0]].Format(time.StampMicro), o[1][0], o[1][1], at[o[1]].Format(time.StampMicro))
				}
			}

			// Who made each change: the client's close() is a system
			// call of this process; the server's socket is born in
			// softirq from the handshake's last ACK, and has no process
			// until this process closes it.
			for _, w := range []struct {
				old, new State
				process  bool
				pid      uint32
			}{
				{Close, SynSent, true, pid},
				{Established, FinWait1, true, pid},
				{CloseWait, LastAck, true, pid},
				{Listen, SynRecv, false, 0},
			} {
				c := find(t, changes, w.old, w.new)
				if c.ProcessContext != w.process || c.PID != w.pid {
					t.Errorf("%s→%s: process context %v, pid %d; want %v, %d", w.old, w.new, c.ProcessContext, c.PID, w.process, w.pid)
				}
			}
			// The server's FIN reaches the client's socket after its
			// close(), in softirq: the pid is the one remembered.
			if c := find(t, changes, FinWait2, Close); c.PID != pid {
				t.Errorf("FIN_WAIT2→CLOSE: pid %d, want %d", c.PID, pid)
			}

			// The tracepoint said FIN_WAIT2→CLOSE; sock_diag shows the
			// TIME_WAIT socket it left, with its timer running.
			finWait2Closed := find(t, changes, FinWait2, Close)
			if !finWait2Closed.MaybeTimeWait() {
				t.Error("FIN_WAIT2→CLOSE: MaybeTimeWait() = false")
			}
			tw, ok, err := TimeWaitOf(finWait2Closed)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				t.Fatalf("TimeWaitOf: no TIME_WAIT socket %s → %s", finWait2Closed.Local, finWait2Closed.Remote)
			}
			if tw.State != TimeWait || tw.Timer != TimerTimeWait || tw.TimerLeft <= 0 || tw.TimerLeft > 60*time.Second {
				t.Errorf("TIME_WAIT socket: state %s, timer %s, %v left; want TIME_WAIT, timewait, 0 < left ≤ 60s", tw.State, tw.Timer, tw.TimerLeft)
			}
			t.Logf("TIME_WAIT %s → %s, %v left", tw.Local, tw.Remote, tw.TimerLeft)
		})
	}
}

// TestStateChangesAbort: a close with SO_LINGER 0 sends RST and goes
// straight to CLOSE, on both sides.
func TestStateChangesAbort(t *testing.T) {
	tests := []struct {
		name    string
		network string
		address string
		port    uint16
	}{
		{"IPv4", "tcp4", "127.0.0.1", 4712},
		{"IPv6", "tcp6", "::1", 4713},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rec := openTracer(t, Options{Ports: []uint16{tt.port}})
			ln, err := net.Listen(tt.network, net.JoinHostPort(tt.address, strconv.Itoa(int(tt.port))))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			client, err := net.Dial(tt.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			server, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()
			if err := client.(*net.TCPConn).SetLinger(0); err != nil {
				t.Fatal(err)
			}
			client.Close()
			if _, err := server.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("server read after the abort: %v, want connection reset", err)
			}

			changes := rec.waitFor(t, 5*time.Second, "ESTABLISHED→CLOSE on both sides", func(c []StateChange) bool {
				return count(c, Established, Close) == 2
			})
			clientAddr, serverAddr := addrPort(client.LocalAddr()), addrPort(server.LocalAddr())
			var clientSide, serverSide StateChange
			for _, c := range changes {
				if c.Old == Established && c.New == Close {
					if c.Local == clientAddr {
						clientSide = c
					} else if c.Local == serverAddr {
						serverSide = c
					}
				}
			}
			if clientSide.Remote != serverAddr || serverSide.Remote != clientAddr {
				t.Fatalf("ESTABLISHED→CLOSE: want one on %s → %s and one on %s → %s; recorded:\n%s", clientAddr, serverAddr, serverAddr, clientAddr, describe(changes))
			}
			if !clientSide.ProcessContext || clientSide.PID != uint32(os.Getpid()) {
				t.Errorf("the client's abort: process context %v pid %d, want its close() in pid %d", clientSide.ProcessContext, clientSide.PID, os.Getpid())
			}
			if serverSide.Time.Before(clientSide.Time) {
				t.Errorf("the server's socket closed (%s) before the client aborted (%s)", serverSide.Time.Format(time.StampMicro), clientSide.Time.Format(time.StampMicro))
			}
			for _, s := range []State{FinWait1, FinWait2, CloseWait, LastAck} {
				for _, c := range changes {
					if c.Old == s || c.New == s {
						t.Errorf("an abort went through %s: %s→%s", s, c.Old, c.New)
					}
				}
			}
		})
	}
}

// TestBurst: a thousand connections, ten changes each, none lost.
func TestBurst(t *testing.T) {
	const (
		port        = 4720
		connections = 1000
		workers     = 4
	)
	tracer, rec := openTracer(t, Options{Ports: []uint16{port}})
	ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	// The server reads to EOF, then closes: the client always closes first,
	// so each connection makes the same ten changes.
	serverDone := make(chan error, 1)
	go func() {
		for range connections {
			conn, err := ln.Accept()
			if err != nil {
				serverDone <- err
				return
			}
			go func() {
				io.Copy(io.Discard, conn)
				conn.Close()
			}()
		}
		serverDone <- nil
	}()
	start := time.Now()
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for range connections / workers {
				c, err := net.Dial("tcp4", ln.Addr().String())
				if err != nil {
					errs <- err
					return
				}
				c.Write([]byte("x"))
				c.Close()
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-serverDone; err != nil {
		t.Fatal(err)
	}
	const perConnection = 10
	want := connections*perConnection + 1 // and the listener's CLOSE→LISTEN
	changes := rec.waitFor(t, 20*time.Second, strconv.Itoa(want)+" changes", func(c []StateChange) bool {
		return len(c) >= want && count(c, LastAck, Close) == connections
	})
	elapsed := time.Since(start)
	ln.Close()
	if len(changes) != want {
		t.Errorf("%d changes, want %d", len(changes), want)
	}
	for _, pair := range [][2]State{
		{Close, SynSent}, {SynSent, Established}, {Listen, SynRecv}, {SynRecv, Established},
		{Established, FinWait1}, {Established, CloseWait}, {FinWait1, FinWait2}, {FinWait2, Close},
		{CloseWait, LastAck}, {LastAck, Close},
	} {
		if n := count(changes, pair[0], pair[1]); n != connections {
			t.Errorf("%s→%s: %d, want %d", pair[0], pair[1], n, connections)
		}
	}
	if lost := tracer.Lost(); lost != 0 {
		t.Errorf("Lost() = %d, want 0", lost)
	}
	t.Logf("%d connections: %d changes in %v, %d lost", connections, len(changes), elapsed.Round(time.Millisecond), tracer.Lost())
}

// TestRunStops: Run returns nil when its context is done, ErrClosed when
// the Tracer is closed, and Close waits for it.
func TestRunStops(t *testing.T) {
	tracer, err := Open(Options{Ports: []uint16{4750}})
	if errors.Is(err, ErrPermission) {
		t.Skipf("kernel tracer: %v (run the tests as root)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tracer.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tracer.Run(ctx, func(StateChange) {}); err != nil {
		t.Errorf("Run after its context ended: %v, want nil", err)
	}

	// Run again after a cancelled Run, and close the Tracer under it.
	runErr := make(chan error, 1)
	running := make(chan struct{})
	go func() {
		close(running)
		runErr <- tracer.Run(context.Background(), func(StateChange) {})
	}()
	<-running
	time.Sleep(20 * time.Millisecond)
	if err := tracer.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	tracer.mu.Lock()
	stillRunning := tracer.runDone != nil
	tracer.mu.Unlock()
	if stillRunning {
		t.Error("Close returned before Run did")
	}
	select {
	case err := <-runErr:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Run after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := tracer.Run(context.Background(), func(StateChange) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run on a closed Tracer: %v, want ErrClosed", err)
	}
	if err := tracer.SetPorts([]uint16{4751}); !errors.Is(err, ErrClosed) {
		t.Errorf("SetPorts on a closed Tracer: %v, want ErrClosed", err)
	}
	if err := tracer.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestAllPorts: with AllPorts, a socket on a port not in Ports is reported.
func TestAllPorts(t *testing.T) {
	_, rec := openTracer(t, Options{Ports: []uint16{4798}, AllPorts: true})
	ln, err := net.Listen("tcp4", "127.0.0.1:4715")
	if err != nil {
		t.Fatal(err)
	}
	want := addrPort(ln.Addr())
	ln.Close()
	rec.waitFor(t, 5*time.Second, "CLOSE→LISTEN→CLOSE on "+want.String(), func(changes []StateChange) bool {
		n := 0
		for _, c := range changes {
			if c.Local == want && (c.New == Listen || c.Old == Listen) {
				n++
			}
		}
		return n == 2
	})
}

// TestLostCounted: with a one-page ring buffer and nobody reading it, most
// changes of a burst are dropped; every change is either delivered later or
// counted in Lost.
func TestLostCounted(t *testing.T) {
	const (
		port          = 4721
		connections   = 100
		perConnection = 10
	)
	tracer, err := Open(Options{Ports: []uint16{port}, ringBufferSize: uint32(os.Getpagesize())})
	if errors.Is(err, ErrPermission) {
		t.Skipf("kernel tracer: %v (run the tests as root)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tracer.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range connections {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		io.Copy(io.Discard, s)
		s.Close()
	}
	// The last change is the server's LAST_ACK→CLOSE, when the client's
	// ACK arrives: wait until no socket is left in LAST_ACK.
	waitSockets(t, Filter{Ports: []uint16{port}, States: []State{LastAck}}, "no socket in LAST_ACK", func(s []Socket) bool {
		return len(s) == 0
	})
	want := connections*perConnection + 1 // and the listener's CLOSE→LISTEN

	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := tracer.Run(ctx, rec.add); err != nil {
		t.Fatal(err)
	}
	delivered, lost := len(rec.snapshot()), tracer.Lost()
	if lost == 0 || uint64(delivered)+lost != uint64(want) {
		t.Errorf("%d delivered + %d lost, want some lost and %d in all", delivered, lost, want)
	}
	t.Logf("one-page ring buffer, nobody reading: %d changes delivered, %d lost", delivered, lost)
}

// TestDualStack: a listener on [::] serving an IPv4 client has an IPv6
// socket with IPv4-mapped addresses; the client's socket is plain IPv4.
func TestDualStack(t *testing.T) {
	_, rec := openTracer(t, Options{Ports: []uint16{4716}})
	ln, err := net.Listen("tcp", "[::]:4716")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp4", "127.0.0.1:4716")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	changes := rec.waitFor(t, 5*time.Second, "both ends ESTABLISHED", func(c []StateChange) bool {
		return count(c, SynSent, Established) == 1 && count(c, SynRecv, Established) == 1
	})
	clientAddr := addrPort(client.LocalAddr())
	mapped := func(a netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	}
	serverAddr := netip.MustParseAddrPort("127.0.0.1:4716")
	clientSide, serverSide := find(t, changes, SynSent, Established), find(t, changes, SynRecv, Established)
	if clientSide.Local != clientAddr || clientSide.Remote != serverAddr {
		t.Errorf("client: %s → %s, want %s → %s", clientSide.Local, clientSide.Remote, clientAddr, serverAddr)
	}
	if serverSide.Local != mapped(serverAddr) || serverSide.Remote != mapped(clientAddr) {
		t.Errorf("server: %s → %s, want %s → %s", serverSide.Local, serverSide.Remote, mapped(serverAddr), mapped(clientAddr))
	}
	sockets, err := Sockets(Filter{Ports: []uint16{4716}, States: []State{Established}})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, s := range sockets {
		if s.Local == serverSide.Local && s.Remote == serverSide.Remote {
			found = true
		}
	}
	if !found {
		t.Errorf("Sockets does not list the server's socket %s → %s as the tracer does: %+v", serverSide.Local, serverSide.Remote, sockets)
	}
}

// TestProcessContext checks who made each change of one connection, as the
// socket lock tells (kernel BTF) and as the fallback guesses from the states
// only a system call enters.
func TestProcessContext(t *testing.T) {
	pid := uint32(os.Getpid())
	syscallOnly := [][2]State{{Close, Listen}, {Close, SynSent}, {Established, FinWait1}, {CloseWait, LastAck}}
	tests := []struct {
		name       string
		withoutBTF bool
		port       uint16
		// inProcess and inSoftirq: the changes that must be made in
		// process context, and those that must not. With the socket
		// lock, others depend on timing: on loopback a packet is
		// processed inside the sender's system call, and a socket its
		// own process holds at that moment queues it for that process.
		inProcess, inSoftirq [][2]State
	}{
		{"socket lock", false, 4717, syscallOnly, [][2]State{
			{Listen, SynRecv}, {SynRecv, Established}, // the server's socket, before accept()
		}},
		{"heuristic", true, 4718, syscallOnly, [][2]State{
			{SynSent, Established}, {Listen, SynRecv}, {SynRecv, Established}, {Established, CloseWait},
			{FinWait1, FinWait2}, {FinWait2, Close}, {LastAck, Close}, {Listen, Close},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rec := openTracer(t, Options{Ports: []uint16{tt.port}, withoutBTF: tt.withoutBTF})
			ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(int(tt.port)))
			if err != nil {
				t.Fatal(err)
			}
			client, err := net.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			server, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			client.Close()
			io.Copy(io.Discard, server)
			server.Close()
			ln.Close()
			changes := rec.waitFor(t, 5*time.Second, "12 changes", func(c []StateChange) bool { return len(c) == 12 })
			for _, c := range changes {
				change := [2]State{c.Old, c.New}
				switch {
				case slices.Contains(tt.inProcess, change) && !c.ProcessContext:
					t.Errorf("%s→%s: not in process context", c.Old, c.New)
				case slices.Contains(tt.inSoftirq, change) && c.ProcessContext:
					t.Errorf("%s→%s: in process context", c.Old, c.New)
				}
				if c.ProcessContext && (c.PID != pid || c.Comm == "") {
					t.Errorf("%s→%s in process context: pid %d comm %q, want pid %d", c.Old, c.New, c.PID, c.Comm, pid)
				}
			}
			// The client's pid is remembered for its socket; the
			// server's socket is born in softirq, with no pid known.
			if c := find(t, changes, FinWait2, Close); c.PID != pid {
				t.Errorf("FIN_WAIT2→CLOSE: pid %d, want %d (remembered)", c.PID, pid)
			}
			if c := find(t, changes, Listen, SynRecv); c.PID != 0 || c.Comm != "" {
				t.Errorf("LISTEN→SYN_RECV: pid %d comm %q, want none", c.PID, c.Comm)
			}
		})
	}
}
