package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// conn is one accepted connection. Only its serve goroutine emits its
// events; other goroutines (CloseConn, AbortConn, shutdown) only close the
// socket and record why, which wakes the serve goroutine to report it.
type conn struct {
	id                 uint64
	tc                 *net.TCPConn
	local, remote      netip.AddrPort // unmapped
	nodeLocal, nodeRem string
	family             string
	stop               chan struct{} // closed with the socket: wakes NoRead's and SlowRead's waits

	mu       sync.Mutex
	closed   bool
	closedAt time.Time
	detail   string
	cause    error
}

func newConn(id uint64, tc *net.TCPConn) *conn {
	// AddrPort keeps a 16-byte (AF_INET6) IP as ::ffff:a.b.c.d: that is what
	// Node prints, so take the Node strings before unmapping.
	rawLocal := tc.LocalAddr().(*net.TCPAddr).AddrPort()
	rawRemote := tc.RemoteAddr().(*net.TCPAddr).AddrPort()
	nodeLocal, _ := nodeAddress(rawLocal.Addr())
	nodeRem, family := nodeAddress(rawRemote.Addr())
	return &conn{
		id:        id,
		tc:        tc,
		local:     unmap(rawLocal),
		remote:    unmap(rawRemote),
		nodeLocal: nodeLocal,
		nodeRem:   nodeRem,
		family:    family,
		stop:      make(chan struct{}),
	}
}

// closeBy closes the socket unless it is already closed, and records the
// close's time and reason for the Close event. The first caller wins: if
// the server closes a connection, the serve goroutine's Read then fails
// with net.ErrClosed, and the Close event must say "closed by server", not
// report that error. closed is false if the socket was already closed.
func (c *conn) closeBy(detail string, cause error, abort bool) (closed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, nil
	}
	if abort {
		// Linger on with a zero timeout: close(2) sends RST (RFC 793's ABORT).
		if err := c.tc.SetLinger(0); err != nil {
			return false, err
		}
	}
	err = c.tc.Close()
	c.closedAt = time.Now()
	c.closed = true
	c.detail, c.cause = detail, cause
	close(c.stop)
	return true, err
}

// event fills in what every event of this connection carries.
func (c *conn) event(t time.Time, k Kind) Event {
	return Event{
		Time:              t,
		Kind:              k,
		Conn:              c.id,
		Local:             c.local,
		Remote:            c.remote,
		NodeRemoteAddress: c.nodeRem,
		NodeLocalAddress:  c.nodeLocal,
		Family:            c.family,
	}
}

// serve runs one connection from its Connection event to its Close event,
// emitting everything in between itself so that their order is the order
// in which the system calls returned.
func (s *Server) serve(c *conn, accepted time.Time) {
	defer s.wg.Done()
	s.emit(c.event(accepted, Connection))

	if s.cfg.Behavior == NoRead {
		// Never read: the kernel keeps acknowledging into the receive buffer
		// until it is full, then advertises a zero window. Nothing here can
		// notice the peer leaving, just like a real server stuck elsewhere.
		<-c.stop
	} else {
		s.readLoop(c)
	}

	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()

	c.mu.Lock()
	e := c.event(c.closedAt, Close)
	e.Detail, e.Err = c.detail, c.cause
	c.mu.Unlock()
	s.emit(e)
}

// readLoop reads until the connection ends, answering as the Behavior says,
// and leaves the socket closed.
func (s *Server) readLoop(c *conn) {
	buf := make([]byte, s.cfg.ReadSize)
	var pending []byte // Lines: a line not complete yet
	lines := 0
	for {
		if s.cfg.ReadDelay > 0 && !c.wait(s.cfg.ReadDelay) {
			break // closed by the server meanwhile
		}
		n, err := c.tc.Read(buf)
		t := time.Now()
		if n > 0 {
			e := c.event(t, Data)
			e.Data = append([]byte(nil), buf[:n]...)
			s.emit(e)

			var replies [][]byte
			switch s.cfg.Behavior {
			case Reply:
				replies = append(replies, s.currentReply())
			case Echo:
				replies = append(replies, buf[:n])
			case Lines:
				// A message ends at a newline, not at the end of a read:
				// answer each complete line, keep the rest for later.
				pending = append(pending, buf[:n]...)
				for {
					i := bytes.IndexByte(pending, '\n')
					if i < 0 {
						break
					}
					lines++
					replies = append(replies, fmt.Appendf(nil, "message %d: %s\n", lines, pending[:i]))
					pending = pending[i+1:]
				}
			}
			for _, out := range replies {
				if werr := s.write(c, out); werr != nil {
					detail, cause := classify(werr)
					c.closeBy(detail, cause, false)
					return
				}
			}
			if len(replies) > 0 && s.cfg.CloseAfterReply {
				c.closeBy(DetailByServer, nil, false)
				return
			}
		}
		if errors.Is(err, io.EOF) && s.cfg.ReplyOnEOF != nil {
			// Half-open: the peer is done sending, but still reads.
			if werr := s.write(c, s.cfg.ReplyOnEOF); werr != nil {
				detail, cause := classify(werr)
				c.closeBy(detail, cause, false)
				return
			}
		}
		if err != nil {
			// Node's default (allowHalfOpen: false): on the peer's FIN the
			// server ends its side too, so the peer sees FIN back.
			detail, cause := classify(err)
			c.closeBy(detail, cause, false)
			return
		}
		if s.cfg.Behavior == SlowRead {
			c.wait(s.cfg.ReadInterval)
		}
	}
}

// wait pauses for d, and reports false if the connection was closed by the
// server meanwhile.
func (c *conn) wait(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.stop:
		return false
	}
}

// write writes p and reports it once the Write returned: Data is what the
// kernel took (all of p unless Err is set).
func (s *Server) write(c *conn, p []byte) error {
	n, err := c.tc.Write(p)
	e := c.event(time.Now(), Write)
	e.Data = append([]byte(nil), p[:n]...)
	e.Err = err
	if err != nil {
		e.Detail, _ = classify(err)
	}
	s.emit(e)
	return err
}

// classify says why a read or write ended the connection. A clean end
// (the peer's FIN, or our own close) has no cause.
func classify(err error) (detail string, cause error) {
	switch {
	case errors.Is(err, io.EOF):
		return DetailPeerFIN, nil
	case errors.Is(err, net.ErrClosed):
		return DetailByServer, nil
	case errors.Is(err, syscall.ECONNRESET):
		return DetailPeerRST, err
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe (peer gone)", err
	case errors.Is(err, syscall.ETIMEDOUT):
		return "timed out (peer unreachable)", err
	default:
		return "connection error", err
	}
}
