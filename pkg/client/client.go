// Package client is the TCP client the lessons drive: each step (dial, write,
// read, half-close, close, abort) is one call that reports what happened as
// a typed event, so it can be shown beside the packets it caused.
//
// The package never prints and never exits, and starts no goroutine that
// outlives a call.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// Kind names what the client did or saw.
type Kind uint8

const (
	// Dialing is the kind named "dial"; Dial is taken by the function.
	Dialing   Kind = iota // about to connect(2): the SYN goes out
	Connected             // connect returned: the handshake is done
	Write                 // a Write returned
	Read                  // a Read returned (with bytes, or with Err: io.EOF, a reset, a deadline)
	HalfClose             // CloseWrite: FIN sent, reading still possible
	Close                 // Close: our side closed (FIN, or RST if unread data was queued)
	Abort                 // Abort: RST sent
	Error                 // the dial failed
)

var kindNames = [...]string{
	Dialing:   "dial",
	Connected: "connected",
	Write:     "write",
	Read:      "read",
	HalfClose: "half-close",
	Close:     "close",
	Abort:     "abort",
	Error:     "error",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event is one thing the client did or saw. Time is taken right after the
// system call returned (for Dial: right before connect), on the clock the
// packet capture uses.
type Event struct {
	Time time.Time
	Kind Kind
	// Local is the client's own address once the socket is bound (the
	// ephemeral port), unmapped.
	Local netip.AddrPort
	// Remote is the server's address, unmapped.
	Remote netip.AddrPort
	// Data holds, for Write, the bytes the kernel took and, for Read, the
	// bytes read. It is a copy the receiver may keep.
	Data []byte
	// Err is, for Error, why the dial failed (errors.Is(err,
	// syscall.ECONNREFUSED) for a closed port); for Read and Write, the
	// call's error.
	Err    error
	Detail string
}

// Client is one connection. Its methods may be called from different
// goroutines (one reader and one writer at a time, as with net.Conn).
type Client struct {
	conn          *net.TCPConn
	emitf         func(Event)
	local, remote netip.AddrPort

	mu     sync.Mutex
	closed bool
}

// Dial connects to addr ("host:port") over TCP. It emits Dialing right before
// connect(2) for each address it tries, then Connected, or Error with the
// failure, which it also returns. ctx bounds the connect.
//
// emit is called from the calling goroutine only; a nil emit discards events.
func Dial(ctx context.Context, addr string, emit func(Event)) (*Client, error) {
	if emit == nil {
		emit = func(Event) {}
	}
	d := net.Dialer{
		// No Happy Eyeballs race: its second dial runs in a goroutine that
		// may outlive DialContext, and would emit from there. Addresses are
		// tried one after the other instead.
		FallbackDelay: -1,
		// No TCP keep-alive, as in Node (socket.setKeepAlive is off by
		// default): Go's 15 s probes would show up on the wire of a lesson
		// whose learner reads slowly, and the Node code shown does not ask
		// for them.
		KeepAlive: -1,
		// Control runs after socket(2) and before connect(2) with the
		// resolved address: exactly the moment of the SYN, and it names
		// the address the SYN goes to even when addr is a host name.
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			remote, _ := netip.ParseAddrPort(address)
			emit(Event{Time: time.Now(), Kind: Dialing, Remote: unmap(remote), Detail: "connect " + address})
			return nil
		},
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	t := time.Now()
	if err != nil {
		e := Event{Time: t, Kind: Error, Err: err, Detail: "dial failed"}
		if errors.Is(err, syscall.ECONNREFUSED) {
			e.Detail = "connection refused (the server's kernel answered RST)"
		}
		var op *net.OpError
		if errors.As(err, &op) {
			if ta, ok := op.Addr.(*net.TCPAddr); ok {
				e.Remote = unmap(ta.AddrPort())
			}
		}
		emit(e)
		return nil, err
	}
	tc := nc.(*net.TCPConn)
	c := &Client{
		conn:   tc,
		emitf:  emit,
		local:  unmap(tc.LocalAddr().(*net.TCPAddr).AddrPort()),
		remote: unmap(tc.RemoteAddr().(*net.TCPAddr).AddrPort()),
	}
	c.emit(Event{Time: t, Kind: Connected, Detail: "handshake done"})
	return c, nil
}

func (c *Client) emit(e Event) {
	e.Local, e.Remote = c.local, c.remote
	c.emitf(e)
}

// Local is the client's own address: the ephemeral port the kernel chose.
func (c *Client) Local() netip.AddrPort { return c.local }

// Remote is the server's address.
func (c *Client) Remote() netip.AddrPort { return c.remote }

// Write writes all of p and emits Write. It blocks while the peer's window
// is closed; use WriteContext to bound that.
func (c *Client) Write(p []byte) error {
	_, err := c.WriteContext(context.Background(), p)
	return err
}

// WriteContext is Write bounded by ctx: when ctx ends first it returns how
// much the kernel took and an error wrapping ctx.Err(). The Write event's
// Data is what the kernel took. The flow-control lesson uses it to write
// until the window closes.
func (c *Client) WriteContext(ctx context.Context, p []byte) (int, error) {
	var n int
	release, err := c.bind(ctx, c.conn.SetWriteDeadline)
	t := time.Now()
	if err == nil {
		n, err = c.conn.Write(p)
		t = time.Now()
		release()
		err = ctxError(ctx, err)
	}
	c.emitIO(t, Write, p[:n], err)
	return n, err
}

// Read reads once, up to max bytes, and emits one Read event. It returns
// io.EOF once the server closed its side (FIN) and an error wrapping
// syscall.ECONNRESET after a reset. ctx bounds the wait, so a lesson never
// hangs: when ctx ends, Read returns an error wrapping ctx.Err() (and
// os.ErrDeadlineExceeded), and the connection stays usable.
func (c *Client) Read(ctx context.Context, max int) ([]byte, error) {
	if max <= 0 {
		return nil, fmt.Errorf("client: read of %d bytes", max)
	}
	var n int
	buf := make([]byte, max)
	release, err := c.bind(ctx, c.conn.SetReadDeadline)
	t := time.Now()
	if err == nil {
		n, err = c.conn.Read(buf)
		t = time.Now()
		release()
		err = ctxError(ctx, err)
	}
	c.emitIO(t, Read, buf[:n], err)
	return buf[:n:n], err
}

// emitIO reports a Read or Write call, also one that failed before the
// system call (closed connection, ctx already done), so that every call
// is one event: a lesson counting reads can trust the count.
func (c *Client) emitIO(t time.Time, k Kind, data []byte, err error) {
	e := Event{Time: t, Kind: k, Data: append([]byte(nil), data...), Err: err}
	if err != nil {
		e.Detail = describe(err)
	}
	c.emit(e)
}

// ReadFull reads until it has n bytes, with one Read call (and event) per
// read(2), so a lesson can count how many reads one message took. Like
// io.ReadFull it returns io.ErrUnexpectedEOF if the server closed after
// some but not all of them.
func (c *Client) ReadFull(ctx context.Context, n int) ([]byte, error) {
	got := make([]byte, 0, n)
	for len(got) < n {
		p, err := c.Read(ctx, n-len(got))
		got = append(got, p...)
		if err != nil {
			if errors.Is(err, io.EOF) && len(got) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return got, err
		}
	}
	return got, nil
}

// CloseWrite half-closes: the kernel sends FIN, and the client can still
// read what the server sends back.
func (c *Client) CloseWrite() error {
	err := c.conn.CloseWrite()
	e := Event{Time: time.Now(), Kind: HalfClose, Err: err, Detail: "FIN sent; still reading"}
	c.emit(e)
	return err
}

// What a Close event's Detail says closing put on the wire, after
// "closed by client: ".
const (
	OutcomeFIN            = "FIN"
	OutcomeNothingFINSent = "nothing more (its FIN already went out)"
	OutcomeNothingReset   = "nothing (the connection was already reset)"
	OutcomeRST            = "RST (unread bytes were waiting)"
)

// Close closes the connection and emits Close. It is idempotent: later
// calls (and Close after Abort) do nothing and return nil.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	detail := "closed by client: " + closeOutcome(c.conn)
	err := c.conn.Close()
	c.emit(Event{Time: time.Now(), Kind: Close, Err: err, Detail: detail})
	return err
}

// Abort resets the connection: SO_LINGER with a zero timeout makes close(2)
// send RST instead of FIN. It emits Abort. After Close or Abort it returns
// net.ErrClosed.
func (c *Client) Abort() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.closed = true
	lerr := c.conn.SetLinger(0)
	err := errors.Join(lerr, c.conn.Close())
	c.emit(Event{Time: time.Now(), Kind: Abort, Err: err, Detail: "aborted by client (RST)"})
	return err
}

// SetReadBuffer sets SO_RCVBUF. On an open connection it caps the receive
// buffer (and so the advertised window) from now on; the window scale was
// already fixed in the handshake.
func (c *Client) SetReadBuffer(n int) error {
	return c.conn.SetReadBuffer(n)
}

// aLongTimeAgo is a deadline in the past: setting it makes a blocked Read
// or Write return at once (net/http uses the same trick).
var aLongTimeAgo = time.Unix(1, 0)

// bind makes ctx bound the next read or write through its deadline setter:
// ctx's deadline becomes the socket's, and ctx's cancellation moves the
// deadline into the past. release must be called when the I/O returned; it
// waits for the cancellation callback if that already started, so that it
// can't touch the deadline of the next call.
func (c *Client) bind(ctx context.Context, set func(time.Time) error) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline() // zero: no deadline
	if err := set(dl); err != nil {
		return nil, err
	}
	if ctx.Done() == nil {
		return func() {}, nil
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		set(aLongTimeAgo)
	})
	return func() {
		if !stop() {
			<-fired
		}
	}, nil
}

// ctxError makes a deadline error that ctx caused say so: it then wraps
// both ctx's error and os.ErrDeadlineExceeded. The socket deadline may
// expire a moment before ctx itself reports it, hence the clock check.
func ctxError(ctx context.Context, err error) error {
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	cerr := ctx.Err()
	if cerr == nil {
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr == nil {
		return err
	}
	return fmt.Errorf("%w: %w", cerr, err)
}

// describe says in a few words what an I/O error means on the wire.
func describe(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "EOF: the server closed its side (FIN)"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server (RST)"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe: the connection is gone"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.Is(err, net.ErrClosed):
		return "use of closed connection"
	default:
		return err.Error()
	}
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
