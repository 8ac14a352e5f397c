package kernel

import (
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// CallKind is the socket call a Call reports.
type CallKind uint8

// The calls, numbered as bpf/tcpcalls.c numbers them.
const (
	CallAccept   CallKind = 1 + iota // accept() returned a new connection
	CallConnect                      // connect() started the handshake
	CallRead                         // a read (read, recv, recvmsg...) returned bytes, or 0 at end of stream
	CallWrite                        // a write (write, send, sendmsg...) handed bytes to the kernel
	CallShutdown                     // shutdown()
	CallClose                        // the socket's last file descriptor was closed
)

var callNames = [...]string{
	CallAccept:   "accept",
	CallConnect:  "connect",
	CallRead:     "read",
	CallWrite:    "write",
	CallShutdown: "shutdown",
	CallClose:    "close",
}

// String is the call's name: accept, connect, read, write, shutdown, close.
func (k CallKind) String() string {
	if int(k) < len(callNames) && callNames[k] != "" {
		return callNames[k]
	}
	return "call(" + strconv.Itoa(int(k)) + ")"
}

// ShutdownHow is which directions a shutdown() closed.
type ShutdownHow uint8

// As the kernel's RCV_SHUTDOWN and SEND_SHUTDOWN bits: SHUT_RD, SHUT_WR and
// SHUT_RDWR.
const (
	ShutRead  ShutdownHow = 1
	ShutWrite ShutdownHow = 2
	ShutBoth  ShutdownHow = 3
)

// String is the shutdown() argument's name.
func (h ShutdownHow) String() string {
	switch h {
	case ShutRead:
		return "SHUT_RD"
	case ShutWrite:
		return "SHUT_WR"
	case ShutBoth:
		return "SHUT_RDWR"
	}
	return ""
}

// unsupported is an error that wraps ErrUnsupported without its words.
type unsupported string

func (u unsupported) Error() string { return string(u) }
func (u unsupported) Unwrap() error { return ErrUnsupported }

// PreviewMax is the most bytes of a read or write a Call's Preview holds.
const PreviewMax = 64

// Call is one socket call of a process on a TCP socket, as the kernel's TCP
// code saw it.
type Call struct {
	// Time on CLOCK_REALTIME: when a connect or a write started (its SYN
	// or segment leaves during the call), when an accept, a read, a
	// shutdown or a close reached the TCP code (a read: when it returned,
	// since it may have waited for the bytes).
	Time time.Time
	Kind CallKind
	// PID is the process id (the thread group id), Comm its command name.
	PID  uint32
	Comm string
	// Local and Remote are the connection's addresses; an accept reports
	// the new connection's, a close of a listener has no Remote (port 0).
	// An IPv6 socket talking IPv4 shows IPv4-mapped addresses.
	Local, Remote netip.AddrPort
	// Len is how many bytes a read or write moved; a read of 0 is the end
	// of the stream (the peer's FIN).
	Len int
	// Preview is the first bytes (at most PreviewMax) of a read or write,
	// where the call's buffer could be read (a plain user buffer: read,
	// write, send, recv, and the first buffer of readv, writev); empty
	// otherwise (sendfile, splice, or a page not in memory).
	Preview []byte
	// How is what a shutdown closed.
	How ShutdownHow
	// Err is connect()'s error, where it failed at once (not a refused
	// connection: that comes later, on the wire).
	Err syscall.Errno
}
