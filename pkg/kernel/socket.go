package kernel

import (
	"net/netip"
	"slices"
	"time"
)

// Socket is one TCP socket as sock_diag reports it: a line of `ss -tanmi`.
type Socket struct {
	State         State
	Local, Remote netip.AddrPort
	// Cookie is the kernel's id of the socket, the same in every dump.
	Cookie uint64
	// Inode and UID of the socket file; 0 for sockets no file holds any
	// more (TIME_WAIT, request sockets, orphans waiting to close).
	Inode, UID uint32

	// A listener's queue (State Listen): connections whose handshake is
	// done and that wait for accept(), and the most it may hold, the
	// listen backlog (Linux queues one more than that before it drops
	// handshakes' last ACKs).
	AcceptQueue, Backlog uint32
	// A connection's queues (other states): bytes received that the
	// program has not read yet (ss's Recv-Q), and bytes sent that the peer
	// has not acknowledged yet (Send-Q).
	RecvQueue, SendQueue uint32

	// Timer is the kernel timer pending on the socket, TimerLeft the time
	// until it fires: for a TIME_WAIT socket, how long it still lingers.
	Timer     Timer
	TimerLeft time.Duration
	// Retransmits is how many times the pending timer has fired already
	// (retransmissions, or zero-window probes).
	Retransmits uint8

	// Info is from the socket's tcp_info; nil for TIME_WAIT and request
	// sockets, which keep none.
	Info *TCPInfo
}

// TCPInfo is the part of struct tcp_info a lesson shows.
type TCPInfo struct {
	// RTT is the smoothed round-trip time, RTTVar its variation.
	RTT, RTTVar time.Duration
	// SndCwnd is the congestion window, in segments; SndSsthresh the
	// slow-start threshold (InfiniteSsthresh until a loss sets one).
	SndCwnd, SndSsthresh uint32
	// Unacked is how many segments are in flight: sent, not yet
	// acknowledged.
	Unacked uint32
	// CAState is the congestion-avoidance state machine's state.
	CAState CAState
	// SndMSS and RcvMSS are the segment sizes sent and seen.
	SndMSS, RcvMSS uint32
	// RcvWnd is the receive window this socket advertised last, in bytes:
	// 0 when a reader stopped reading and its buffer filled. HasRcvWnd is
	// false where tcp_info has no tcpi_rcv_wnd (before Linux 6.2).
	RcvWnd    uint32
	HasRcvWnd bool
	// SndWnd is the window the peer advertised last, in bytes. HasSndWnd
	// is false where tcp_info has no tcpi_snd_wnd (before Linux 5.19).
	SndWnd    uint32
	HasSndWnd bool
	// BytesAcked is how many bytes sent the peer acknowledged,
	// BytesReceived how many were received.
	BytesAcked, BytesReceived uint64
	// TotalRetrans counts the segments retransmitted over the life of the
	// connection.
	TotalRetrans uint32
}

// InfiniteSsthresh is the slow-start threshold before any loss
// (TCP_INFINITE_SSTHRESH): slow start has no limit yet.
const InfiniteSsthresh = 0x7fffffff

// CAState is tcp_info's tcpi_ca_state: where the sender's congestion
// control stands.
type CAState uint8

const (
	CAOpen     CAState = iota // no loss suspected
	CADisorder                // duplicate ACKs or SACKs seen, no loss decided yet
	CACWR                     // the window is being reduced (ECN, local congestion)
	CARecovery                // fast recovery: a loss found by duplicate ACKs is repaired
	CALoss                    // a retransmission timeout: everything in flight counts as lost
)

func (c CAState) String() string {
	names := [...]string{"open", "disorder", "cwr", "recovery", "loss"}
	if int(c) < len(names) {
		return names[c]
	}
	return "?"
}

// Timer is a kind of kernel timer pending on a socket.
type Timer uint8

// The timers sock_diag reports (idiag_timer), named as ss names them.
const (
	TimerOff        Timer = 0 // none pending
	TimerRetransmit Timer = 1 // retransmission (ss: "on")
	TimerKeepalive  Timer = 2
	TimerTimeWait   Timer = 3
	TimerPersist    Timer = 4 // zero-window probe
)

func (t Timer) String() string {
	switch t {
	case TimerOff:
		return "off"
	case TimerRetransmit:
		return "on"
	case TimerKeepalive:
		return "keepalive"
	case TimerTimeWait:
		return "timewait"
	case TimerPersist:
		return "persist"
	}
	return "unknown"
}

// Filter says which TCP sockets Sockets returns.
type Filter struct {
	// Ports: the socket's local or remote port is one of these. Empty
	// means every port.
	Ports []uint16
	// States: the socket is in one of these. Empty means every state.
	States []State
}

func (f Filter) matches(s *Socket) bool {
	if len(f.Ports) > 0 && !slices.Contains(f.Ports, s.Local.Port()) && !slices.Contains(f.Ports, s.Remote.Port()) {
		return false
	}
	return len(f.States) == 0 || slices.Contains(f.States, s.State)
}

// stateMask is the filter's states as sock_diag's idiag_states bit mask.
func (f Filter) stateMask() uint32 {
	if len(f.States) == 0 {
		return ^uint32(0)
	}
	var mask uint32
	for _, s := range f.States {
		mask |= 1 << s
	}
	return mask
}
