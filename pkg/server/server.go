// Package server is the Go twin of Node's net.createServer: a TCP server that
// reports what its own code sees (listening, connection, data, write, close)
// as typed events, so they can be shown beside the packets on the wire.
//
// The package never prints and never exits; it returns errors and calls the
// emit function the caller passes to Start.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Behavior chooses what the server does with each connection; each one is
// the server side of a lesson.
type Behavior uint8

const (
	Reply       Behavior = iota // on each read, write Config.Reply (the notes' socket.write("Hello from server"))
	Echo                        // write back what was read
	Silent                      // read and report, never write
	NeverAccept                 // listen but never call Accept: the kernel still completes handshakes (backlog lesson)
	NoRead                      // accept, never read: the receive window fills and closes (flow-control lesson)
	SlowRead                    // accept, read ReadSize bytes every ReadInterval
	Lines                       // newline framing: answer each complete line, however the bytes arrived (stream lesson)
)

var behaviorNames = [...]string{
	Reply:       "reply",
	Echo:        "echo",
	Silent:      "silent",
	NeverAccept: "never-accept",
	NoRead:      "no-read",
	SlowRead:    "slow-read",
	Lines:       "lines",
}

func (b Behavior) String() string {
	if int(b) < len(behaviorNames) {
		return behaviorNames[b]
	}
	return fmt.Sprintf("behavior(%d)", uint8(b))
}

// Defaults of Config.
const (
	DefaultAddr         = "127.0.0.1:4000"
	DefaultReadSize     = 64 << 10
	DefaultSlowReadSize = 1024
	DefaultReadInterval = 100 * time.Millisecond
)

// DefaultReply is what the notes' full example server writes back.
var DefaultReply = []byte("Hello from server")

// Config says where to listen and how to behave.
type Config struct {
	// Addr is host:port; "" means DefaultAddr (loopback only: a teaching tool
	// should not open a port to the network unless the learner asks).
	// A wildcard IPv4 host ("0.0.0.0") with Network "tcp" listens on IPv4
	// only, as Node's listen(port, "0.0.0.0") does; Go alone would open a
	// dual-stack [::] socket. Use "[::]:port" or ":port" for dual-stack.
	Addr string
	// Network is "tcp" (default), "tcp4" or "tcp6".
	Network  string
	Behavior Behavior
	// Reply is written on each read by Behavior Reply; nil means DefaultReply.
	Reply []byte
	// CloseAfterReply closes the connection after the first write (Reply or
	// Echo): a server that hangs up.
	CloseAfterReply bool
	// ReadSize is the size of each read: for SlowRead the chunk it takes per
	// tick (default 1024), otherwise the read buffer (default 64 KiB).
	ReadSize int
	// ReadInterval is SlowRead's pause between reads (default 100ms).
	ReadInterval time.Duration
	// ReadDelay, if > 0, waits that long before each read, so that what
	// the peer sent meanwhile piles up in the receive buffer and one read
	// returns it all (the stream lesson: two writes, one read).
	ReadDelay time.Duration
	// ReplyOnEOF, if set, is written when the peer half-closes (its FIN
	// arrives), before the server closes its own side: the half-close
	// lesson's "the other side can still write" (Node: allowHalfOpen and
	// socket.end(data)).
	ReplyOnEOF []byte
	// Backlog, if > 0, is the listen(2) backlog instead of the system's
	// (net.core.somaxconn): a NeverAccept server with a small one shows what
	// happens when the accept queue is full (backlog lesson).
	Backlog int
	// ReceiveBuffer, if > 0, sets SO_RCVBUF on the listening socket before
	// listen(2), so that accepted sockets inherit a small buffer and the
	// window they advertise (its scale is fixed in the handshake) stays
	// small: the flow-control lesson's window then closes quickly.
	ReceiveBuffer int
}

// ErrNoConn is returned by CloseConn and AbortConn for a connection that is
// not open (never was, or is already closed).
var ErrNoConn = errors.New("server: no such open connection")

// Server is a running server. Its methods are safe for concurrent use.
type Server struct {
	cfg   Config
	emitf func(Event)
	ln    *net.TCPListener
	addr  netip.AddrPort // unmapped bound address

	wg   sync.WaitGroup
	done chan struct{} // closed by shutdown: wakes the ctx watcher and accept back-off

	mu      sync.Mutex
	reply   []byte // what Reply writes; SetReply changes it
	closing bool
	conns   map[uint64]*conn
	nextID  uint64

	shutOnce sync.Once
	closeErr error
}

// Start listens and then serves in background goroutines until ctx is done
// or Close is called. Listening is synchronous: when Start returns nil the
// port is bound and the Listening event was emitted, so a caller may dial at
// once. A port in use gives an error wrapping syscall.EADDRINUSE.
//
// emit is called from the server's goroutines, possibly concurrently, so it
// must be safe for concurrent use; it should not block for long (a buffered
// channel is typical), because a blocked emit stalls that connection and
// Close waits for it. emit must not call Close. A nil emit discards events.
//
// After ctx is done the server shuts down by itself; Close still waits for
// its goroutines.
func Start(ctx context.Context, cfg Config, emit func(Event)) (*Server, error) {
	cfg, network, addr, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	// No TCP keep-alive, as in Node (off unless setKeepAlive asks): Go's
	// 15 s probes would show up on a slow learner's wire.
	lc := net.ListenConfig{KeepAlive: -1}
	if cfg.ReceiveBuffer > 0 {
		size := cfg.ReceiveBuffer
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			return setReceiveBuffer(rc, size)
		}
	}
	l, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if cfg.Backlog > 0 {
		// Go listens with the system's backlog; listen(2) again on the same
		// socket only changes it.
		if err := setBacklog(l.(*net.TCPListener), cfg.Backlog); err != nil {
			l.Close()
			return nil, fmt.Errorf("server: backlog %d: %w", cfg.Backlog, err)
		}
	}
	t := time.Now()
	if emit == nil {
		emit = func(Event) {}
	}
	s := &Server{
		cfg:   cfg,
		emitf: emit,
		ln:    l.(*net.TCPListener),
		done:  make(chan struct{}),
		conns: make(map[uint64]*conn),
		reply: cfg.Reply,
	}
	raw := s.ln.Addr().(*net.TCPAddr).AddrPort()
	s.addr = unmap(raw)
	nodeLocal, family := nodeAddress(raw.Addr())
	s.emit(Event{Time: t, Kind: Listening, Local: s.addr, NodeLocalAddress: nodeLocal, Family: family,
		Detail: fmt.Sprintf("%s %s", network, s.cfg.Behavior)})

	s.wg.Add(1)
	go s.watch(ctx)
	if cfg.Behavior != NeverAccept {
		s.wg.Add(1)
		go s.acceptLoop()
	}
	return s, nil
}

// normalize fills in defaults and checks what net.Listen would only check
// later or not at all (a negative size would make a slice panic).
func normalize(cfg Config) (Config, string, string, error) {
	network := cfg.Network
	if network == "" {
		network = "tcp"
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return cfg, "", "", fmt.Errorf("server: network %q: want tcp, tcp4 or tcp6", cfg.Network)
	}
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return cfg, "", "", fmt.Errorf("server: address %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && network == "tcp" && ip.Is4() && ip.IsUnspecified() {
		// Go listens on "tcp" 0.0.0.0 with a dual-stack AF_INET6 socket;
		// Node (and the notes' listen(4000, "0.0.0.0")) gets AF_INET.
		network = "tcp4"
	}
	if cfg.ReadSize < 0 || cfg.ReadInterval < 0 || cfg.ReceiveBuffer < 0 || cfg.ReadDelay < 0 || cfg.Backlog < 0 {
		return cfg, "", "", errors.New("server: ReadSize, ReadInterval, ReadDelay, Backlog and ReceiveBuffer must not be negative")
	}
	if cfg.Behavior > Lines {
		return cfg, "", "", fmt.Errorf("server: unknown %v", cfg.Behavior)
	}
	if cfg.ReadSize == 0 {
		cfg.ReadSize = DefaultReadSize
		if cfg.Behavior == SlowRead {
			cfg.ReadSize = DefaultSlowReadSize
		}
	}
	if cfg.ReadInterval == 0 {
		cfg.ReadInterval = DefaultReadInterval
	}
	if cfg.Reply == nil {
		cfg.Reply = DefaultReply
	}
	// Our own copies: the caller may reuse its slices while we serve.
	cfg.Reply = append([]byte(nil), cfg.Reply...)
	if cfg.ReplyOnEOF != nil {
		cfg.ReplyOnEOF = append([]byte(nil), cfg.ReplyOnEOF...)
	}
	cfg.Network = network
	cfg.Addr = addr
	return cfg, network, addr, nil
}

func (s *Server) emit(e Event) { s.emitf(e) }

// Addr is the bound address, unmapped ([::]:port for a dual-stack listener);
// useful after listening on port 0.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// SetReply changes what Behavior Reply writes from the next read on: a
// lesson shows the notes' two replies with one server.
func (s *Server) SetReply(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = append([]byte(nil), p...)
}

func (s *Server) currentReply() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reply
}

// Conns is the number of connections open now.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close closes the listener and every open connection ("closed by server"),
// then waits until all of the server's goroutines have returned, so that no
// event is emitted after it returns. It is idempotent and returns the
// listener's close error, if any, on every call.
func (s *Server) Close() error {
	s.shutdown()
	s.wg.Wait()
	return s.closeErr
}

// CloseConn closes connection id from the server side: the kernel sends FIN
// (or RST if unread data is still queued, as for any close).
func (s *Server) CloseConn(id uint64) error {
	return s.closeConn(id, false)
}

// AbortConn resets connection id: SO_LINGER with a zero timeout makes
// close(2) send RST instead of FIN and drop any unsent data.
func (s *Server) AbortConn(id uint64) error {
	return s.closeConn(id, true)
}

func (s *Server) closeConn(id uint64, abort bool) error {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%w: %d", ErrNoConn, id)
	}
	detail := DetailByServer
	if abort {
		detail = DetailAbortServer
	}
	closed, err := c.closeBy(detail, nil, abort)
	if err == nil && !closed {
		// Its serve goroutine is about to report the close it saw first.
		return fmt.Errorf("%w: %d", ErrNoConn, id)
	}
	return err
}

// watch turns ctx's end into a shutdown. It is a goroutine of its own (not
// context.AfterFunc) so that Close's WaitGroup covers it.
func (s *Server) watch(ctx context.Context) {
	defer s.wg.Done()
	select {
	case <-ctx.Done():
		s.shutdown()
	case <-s.done:
	}
}

// shutdown closes the listener, reports it, then closes every connection.
// Each connection's goroutine reports its own Close, keeping the rule that
// a connection's events come from one goroutine.
func (s *Server) shutdown() {
	s.shutOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		conns := make([]*conn, 0, len(s.conns))
		for _, c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		close(s.done)

		s.closeErr = s.ln.Close()
		s.emit(Event{Time: time.Now(), Kind: Close, Local: s.addr, Err: s.closeErr, Detail: DetailListenerDown})
		for _, c := range conns {
			c.closeBy(DetailByServer, nil, false)
		}
	})
}

// acceptLoop accepts until the listener is closed. A connection accepted
// while the server is shutting down is closed unreported: shutdown has
// already taken its list of connections to close.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		tc, err := s.ln.AcceptTCP()
		t := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if !resourceShortage(err) {
				s.emit(Event{Time: t, Kind: Error, Local: s.addr, Err: err, Detail: "accept failed; no longer accepting"})
				return
			}
			// Out of file descriptors or memory: Accept would fail again at
			// once, so wait (as net/http does) instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.emit(Event{Time: t, Kind: Error, Local: s.addr, Err: err, Detail: "accept failed; retrying in " + backoff.String()})
			timer := time.NewTimer(backoff)
			select {
			case <-timer.C:
			case <-s.done:
				timer.Stop()
				return
			}
			continue
		}
		backoff = 0

		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			tc.Close()
			return
		}
		s.nextID++
		c := newConn(s.nextID, tc)
		s.conns[c.id] = c
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, t)
	}
}

func resourceShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
