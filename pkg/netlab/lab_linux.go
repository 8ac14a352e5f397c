package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Lab is a running lab: two namespaces and the link between them. Its
// methods are safe for concurrent use.
type Lab struct {
	client, server *namespace
	c2s, s2c       *pipe
	ipv6           bool

	done      chan struct{} // closed by shutdown: stops every goroutine
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu   sync.Mutex
	link Link
	hits []*atomic.Uint64
}

// New makes the two namespaces and starts the link. It must run as root
// (before the program drops privileges); the lab then works without.
//
// When ctx is done the link stops forwarding and the namespaces' threads
// end; Close must still be called to wait for that and release the rest.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	if err := cfg.Link.validate(); err != nil {
		return nil, err
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < 1280 || mtu > 65535 {
		return nil, fmt.Errorf("netlab: MTU %d: want 1280..65535", mtu)
	}
	client, err := startNamespace("client", clientPrefix4, clientPrefix6, serverPrefix4, serverPrefix6, mtu)
	if err != nil {
		return nil, err
	}
	server, err := startNamespace("server", serverPrefix4, serverPrefix6, clientPrefix4, clientPrefix6, mtu)
	if err != nil {
		client.stopAndWait()
		return nil, err
	}
	l := &Lab{
		client: client,
		server: server,
		ipv6:   client.ipv6 && server.ipv6,
		done:   make(chan struct{}),
	}
	seed := uint64(time.Now().UnixNano())
	toServer := func(a netip.Addr) bool {
		return serverPrefix4.Masked().Contains(a) || (l.ipv6 && serverPrefix6.Masked().Contains(a))
	}
	toClient := func(a netip.Addr) bool {
		return clientPrefix4.Masked().Contains(a) || (l.ipv6 && clientPrefix6.Masked().Contains(a))
	}
	l.c2s = newPipe(ClientToServer, toServer, writeTo(server.tun), cfg.Emit, seed)
	l.s2c = newPipe(ServerToClient, toClient, writeTo(client.tun), cfg.Emit, seed)
	if err := l.SetLink(cfg.Link); err != nil {
		l.Close()
		return nil, err
	}
	l.wg.Add(5)
	go l.forward(client.tun, l.c2s)
	go l.forward(server.tun, l.s2c)
	go func() { defer l.wg.Done(); l.c2s.run(l.done) }()
	go func() { defer l.wg.Done(); l.s2c.run(l.done) }()
	go func() {
		defer l.wg.Done()
		select {
		case <-ctx.Done():
			l.shutdown()
		case <-l.done:
		}
	}()
	return l, nil
}

func writeTo(f *os.File) func([]byte) error {
	return func(b []byte) error {
		_, err := f.Write(b)
		return err
	}
}

// forward reads the packets one side sends and hands them to that
// direction's pipe, until the TUN file is closed.
func (l *Lab) forward(tun *os.File, p *pipe) {
	defer l.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, err := tun.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// A TUN read fails only for a packet that did not fit or a
			// device going away; neither is worth ending the link for,
			// and a pause keeps a lasting failure from spinning a core.
			select {
			case <-l.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.handle(buf[:n], time.Now())
	}
}

// HasIPv6 reports whether the namespaces have their IPv6 addresses
// (ClientAddr6, ServerAddr6); without, the lab is IPv4 only.
func (l *Lab) HasIPv6() bool { return l.ipv6 }

// SetLink changes what the link does, at once, for packets that reach it
// from now on (packets already waiting keep their time). Rules start
// counting from zero.
func (l *Lab) SetLink(link Link) error {
	if err := link.validate(); err != nil {
		return err
	}
	link.Rules = append([]Rule(nil), link.Rules...)
	c2s, s2c, hits := ruleStates(link.Rules)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.link, l.hits = link, hits
	l.c2s.set(link.ClientToServer, c2s, link.Seed)
	l.s2c.set(link.ServerToClient, s2c, link.Seed)
	return nil
}

// Link returns the link's current state.
func (l *Lab) Link() Link {
	l.mu.Lock()
	defer l.mu.Unlock()
	link := l.link
	link.Rules = append([]Rule(nil), l.link.Rules...)
	return link
}

// Stats returns what the link did so far.
func (l *Lab) Stats() Stats {
	l.mu.Lock()
	hits := make([]uint64, len(l.hits))
	for i, h := range l.hits {
		hits[i] = h.Load()
	}
	l.mu.Unlock()
	return Stats{ClientToServer: l.c2s.c.snapshot(), ServerToClient: l.s2c.c.snapshot(), RuleHits: hits}
}

// InClient runs f on a thread inside the client namespace and returns its
// error: sockets f makes belong to the client side. See the package
// documentation for what f may do. Calls run one at a time; f must not call
// InClient itself. After Close it returns ErrClosed without running f.
func (l *Lab) InClient(f func() error) error { return l.client.run(f) }

// InServer is InClient for the server namespace.
func (l *Lab) InServer(f func() error) error { return l.server.run(f) }

// ClientNamespacePath is a path that names the client namespace while the
// lab runs (/proc/PID/fd/N), for `nsenter --net=PATH` from a root shell.
func (l *Lab) ClientNamespacePath() string { return l.client.path() }

// ServerNamespacePath is ClientNamespacePath for the server namespace.
func (l *Lab) ServerNamespacePath() string { return l.server.path() }

// shutdown stops the link and the namespace threads without waiting.
func (l *Lab) shutdown() {
	l.closeOnce.Do(func() {
		close(l.done)
		// Closing the TUN files wakes the readers; it also removes the
		// devices, the last thing (besides sockets) holding the namespaces.
		l.client.tun.Close()
		l.server.tun.Close()
		l.client.stop()
		l.server.stop()
	})
}

// Close stops the link and ends both namespaces' threads, waiting for every
// goroutine of the lab (and for a function running in a namespace to
// return). The namespaces disappear once the sockets made in them are
// closed too; the threads leave /proc a moment after Close returns.
func (l *Lab) Close() error {
	l.shutdown()
	l.wg.Wait()
	l.client.stopAndWait()
	l.server.stopAndWait()
	return nil
}

// namespace is one side: a thread that lives in a new network namespace and
// runs functions there on request, with the side's TUN device.
type namespace struct {
	name     string
	requests chan request
	quit     chan struct{} // closed by stop
	stopOnce sync.Once
	exited   chan struct{} // closed when the thread's goroutine returned

	// Set up on the thread before New returns, read-only after.
	tun    *os.File
	nsFile *os.File // the namespace itself, kept open for NamespacePath
	ipv6   bool
}

type request struct {
	f      func() error
	result chan result
}

type result struct {
	err      error
	panicked bool
	value    any
}

// startNamespace starts the namespace's thread and waits until it has set
// the namespace up: lo up, tun0 with self4 and self6, routes to peer4 and
// peer6 through it.
func startNamespace(name string, self4, self6, peer4, peer6 netip.Prefix, mtu int) (*namespace, error) {
	ns := &namespace{
		name:     name,
		requests: make(chan request),
		quit:     make(chan struct{}),
		exited:   make(chan struct{}),
	}
	ready := make(chan error, 1)
	go ns.loop(ready, func() error { return ns.setUp(self4, self6, peer4, peer6, mtu) })
	if err := <-ready; err != nil {
		ns.stopAndWait()
		return nil, err
	}
	return ns, nil
}

func (ns *namespace) loop(ready chan<- error, setUp func() error) {
	defer close(ns.exited)
	// The thread is never unlocked: when this goroutine returns, the Go
	// runtime ends the thread instead of reusing it, so no other goroutine
	// ever runs inside the namespace, and the thread's hold on it goes.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		ready <- unshareError(err)
		return
	}
	if err := setUp(); err != nil {
		ready <- err
		return
	}
	ready <- nil
	for {
		select {
		case r := <-ns.requests:
			r.result <- call(r.f)
		case <-ns.quit:
			return
		}
	}
}

// call runs f and catches its panic, so that the caller's goroutine can
// panic with it instead of this thread taking the program down out of
// context.
func call(f func() error) (res result) {
	defer func() {
		if v := recover(); v != nil {
			res = result{panicked: true, value: v}
		}
	}()
	return result{err: f()}
}

func (ns *namespace) run(f func() error) error {
	r := request{f: f, result: make(chan result, 1)}
	select {
	case ns.requests <- r:
	case <-ns.quit:
		return ErrClosed
	}
	res := <-r.result
	if res.panicked {
		panic(res.value)
	}
	return res.err
}

func (ns *namespace) stop() { ns.stopOnce.Do(func() { close(ns.quit) }) }

func (ns *namespace) stopAndWait() {
	ns.stop()
	<-ns.exited
	if ns.tun != nil {
		ns.tun.Close()
	}
	if ns.nsFile != nil {
		ns.nsFile.Close()
	}
}

func (ns *namespace) path() string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.nsFile.Fd())
}

// setUp runs on the namespace's thread, right after unshare.
func (ns *namespace) setUp(self4, self6, peer4, peer6 netip.Prefix, mtu int) (err error) {
	defer func() {
		if err != nil {
			if ns.tun != nil {
				ns.tun.Close()
				ns.tun = nil
			}
			if ns.nsFile != nil {
				ns.nsFile.Close()
				ns.nsFile = nil
			}
		}
	}()
	ns.nsFile, err = os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return &setupError{kind: ErrUnsupported, what: "cannot open the new namespace (/proc/thread-self/ns/net)", err: err}
	}
	nl, err := openRTNL()
	if err != nil {
		return &setupError{what: ns.name + " namespace", err: err}
	}
	defer nl.close()
	if err := nl.linkUp(1, 0); err != nil { // lo is always index 1 in a new namespace
		return &setupError{what: ns.name + " namespace: lo up", err: err}
	}
	ns.tun, err = openTUN(TUNName)
	if err != nil {
		return err
	}
	ifi, err := net.InterfaceByName(TUNName)
	if err != nil {
		return &setupError{what: ns.name + " namespace: " + TUNName, err: err}
	}
	// No link-local address and so no router solicitations: the link
	// carries only what the lesson sends. The per-namespace sysctls are
	// reached through this thread's /proc/sys/net. Both are niceties; a
	// failure leaves a working lab.
	writeSysctl("net/ipv6/conf/"+TUNName+"/addr_gen_mode", "1")
	// Let an unprivileged program bind ports below 1024 inside the lab
	// (a lesson's HTTP server on port 80 after root is dropped); this is
	// the namespace's own setting, the host keeps its own.
	writeSysctl("net/ipv4/ip_unprivileged_port_start", "0")
	if err := nl.linkUp(ifi.Index, mtu); err != nil {
		return &setupError{what: ns.name + " namespace: " + TUNName + " up", err: err}
	}
	if err := nl.addAddr(ifi.Index, self4); err != nil {
		return &setupError{what: fmt.Sprintf("%s namespace: address %s", ns.name, self4), err: err}
	}
	if err := nl.addRoute(ifi.Index, peer4); err != nil {
		return &setupError{what: fmt.Sprintf("%s namespace: route to %s", ns.name, peer4.Masked()), err: err}
	}
	// IPv6 is a bonus: a kernel or namespace without it still gets an
	// IPv4 lab.
	if err := nl.addAddr(ifi.Index, self6); err == nil {
		ns.ipv6 = nl.addRoute(ifi.Index, peer6) == nil
	}
	return nil
}

func writeSysctl(name, value string) {
	_ = os.WriteFile("/proc/sys/"+name, []byte(value), 0)
}

// openTUN makes a TUN device (IP packets, no extra header) in the calling
// thread's namespace. The device lives as long as the returned file.
func openTUN(name string) (*os.File, error) {
	// Non-blocking, so os.File puts it in Go's poller: Read waits without a
	// thread, and Close wakes a pending Read.
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			return nil, &setupError{kind: ErrUnsupported, what: "no TUN device: /dev/net/tun is missing (modprobe tun)", err: err}
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return nil, &setupError{kind: ErrPermission, what: "opening /dev/net/tun needs root", err: err}
		}
		return nil, &setupError{what: "opening /dev/net/tun", err: err}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, &setupError{what: "TUN name " + name, err: err}
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) {
			return nil, &setupError{kind: ErrPermission, what: "creating a TUN device needs root (CAP_NET_ADMIN)", err: err}
		}
		return nil, &setupError{what: "creating TUN device " + name, err: err}
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun ("+name+")"), nil
}

func unshareError(err error) error {
	switch {
	case errors.Is(err, syscall.EPERM):
		return &setupError{kind: ErrPermission, what: "creating a network namespace needs root (CAP_SYS_ADMIN)", err: err}
	case errors.Is(err, syscall.EINVAL):
		return &setupError{kind: ErrUnsupported, what: "this kernel has no network namespaces (CONFIG_NET_NS)", err: err}
	}
	return &setupError{what: "creating a network namespace", err: err}
}
