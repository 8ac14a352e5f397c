package kernel

import (
	"errors"
	"net/netip"
	"time"
)

// Errors a caller tells apart with errors.Is. The error returned wraps one of
// them and says, in one line, what is missing.
var (
	// ErrPermission: the process may not load BPF programs or attach them
	// (it needs root, or the capabilities the package doc lists).
	ErrPermission = errors.New("kernel socket states need root (or CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH)")
	// ErrUnsupported: this system has no BPF, no ring buffers or no such
	// tracepoint (the kernel is too old), or is not Linux.
	ErrUnsupported = errors.New("kernel socket states are not available here")
	// ErrClosed: the Tracer was closed.
	ErrClosed = errors.New("kernel tracer closed")
)

// Options says which sockets a Tracer reports.
type Options struct {
	// Ports are watched: a socket is reported when its local or its remote
	// port is one of them. With no Ports and no AllPorts, nothing is
	// reported until Tracer.SetPorts names some.
	Ports []uint16
	// AllPorts reports every TCP socket, whatever Ports says.
	AllPorts bool
	// ExcludePID leaves out the calls of this process (OpenCalls only):
	// the playground's own server and client, whose code reports them.
	ExcludePID uint32

	// monotonicClock makes the program stamp CLOCK_MONOTONIC even where
	// CLOCK_TAI is available, to test the fallback.
	monotonicClock bool
	// withoutBTF makes the program decide ProcessContext as it does
	// where the kernel has no BTF, to test that fallback.
	withoutBTF bool
	// ringBufferSize replaces the ring buffer's size (a power of 2, at
	// least a page), to test what happens when it is full.
	ringBufferSize uint32
	// missingTracepoint makes OpenCalls act as if the kernel had no
	// tracepoint of this name, to test what it then reports.
	missingTracepoint string
}

// defaultRingBuffer is the ring buffer's size: about 11,000 state changes
// waiting for the reader. A burst of 1000 connections makes 10,000 while
// the reader keeps up (none lost, TestBurst); the ring's pages
// are mapped into the process twice, so 4 MiB (the C program's size) cost
// 5 MiB more of resident memory for nothing the load bench needed.
const defaultRingBuffer = 1 << 20

// StateChange is one change of a TCP socket's state, as the tracepoint
// sock:inet_sock_set_state reported it.
type StateChange struct {
	// Time the kernel made the change, on CLOCK_REALTIME (the clock of
	// pcap timestamps).
	Time time.Time
	// Sock is the socket's kernel address: an id that ties the changes of
	// one socket together while it lives. A closed socket's address may be
	// reused by a new socket.
	Sock uint64
	// Old and New are the states before and after.
	Old, New State
	// Local and Remote are the socket's addresses. A connecting socket's
	// local port is 0 until the kernel has chosen it (CLOSE→SYN_SENT). An
	// IPv6 socket talking IPv4 shows IPv4-mapped addresses
	// (::ffff:127.0.0.1), as sock_diag does.
	Local, Remote netip.AddrPort
	// ProcessContext is true when the change ran in a system call of the
	// process PID (it held the socket: listen, connect, shutdown, close, or
	// a read or write that processed packets queued meanwhile). When false
	// the change ran in softirq or a timer (a packet arrived, a timer
	// fired), and PID and Comm are those of the process last seen changing
	// this socket in process context, or 0 and "" if none was.
	ProcessContext bool
	// PID is the process id (the thread group id), Comm its command name.
	PID  uint32
	Comm string
}

// MaybeTimeWait reports whether the change may have turned the socket into
// a TIME_WAIT mini-socket: the tracepoint reports that as FIN_WAIT2→CLOSE
// (and so, too, a FIN_WAIT2 that timed out). TimeWaitOf tells which.
func (c StateChange) MaybeTimeWait() bool {
	return c.Old == FinWait2 && c.New == Close
}
