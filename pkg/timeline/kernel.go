package timeline

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// KernelKind is what a kernel event reports.
type KernelKind uint8

const (
	KernelState KernelKind = iota // a socket changed state
	KernelQueue                   // a socket's queues or window changed
	KernelCwnd                    // a sender's congestion window or phase changed
)

func (k KernelKind) String() string { return [...]string{"state", "queue", "cwnd"}[k] }

// The phases of a sender's congestion control (KernelEvent.Phase).
const (
	PhaseSlowStart = "slow-start"           // below ssthresh: the window doubles every round trip
	PhaseAvoidance = "congestion-avoidance" // at or past ssthresh: it grows slowly
	PhaseDisorder  = "disorder"             // duplicate ACKs seen, no loss decided yet
	PhaseRecovery  = "recovery"             // fast recovery of a loss found by duplicate ACKs
	PhaseLoss      = "loss"                 // after a retransmission timeout
	PhaseReduce    = "cwr"                  // the window is being reduced
)

// KernelEvent is what the kernel's side of a socket did: a state change
// (from the tracepoint sock:inet_sock_set_state, or TIME_WAIT confirmed
// by sock_diag) or a change of its queues (sock_diag). Addresses are
// unmapped, as on the wire.
type KernelEvent struct {
	Time          time.Time
	Kind          KernelKind
	Side          Side // the Linker sets it from the wire when it can
	Local, Remote netip.AddrPort

	// A state change: Linux's names (ESTABLISHED, TIME_WAIT...).
	Old, New string
	PID      uint32 // the process that owns the socket, when known
	Comm     string
	TimeLeft time.Duration // TIME_WAIT: how long the kernel keeps it still

	// A queue change: a listener's accept queue and backlog, or a
	// connection's receive and send queues (bytes) and the window it
	// advertises.
	Listener             bool
	AcceptQueue, Backlog uint32
	RecvQueue, SendQueue uint32
	Window               uint32
	HasWindow            bool

	// A congestion window change (tcp_info): the window and the
	// slow-start threshold in segments (Ssthresh 0: none yet), the
	// segments in flight, the largest window this socket had, and the
	// phase (Phase... constants).
	Cwnd, Ssthresh, InFlight, Peak uint32
	Phase                          string
	RTT                            time.Duration // the kernel's smoothed round-trip time, when known
}

// KernelEventOf wraps a kernel event for the timeline.
func KernelEventOf(k KernelEvent) Event {
	return Event{Time: k.Time, Source: SourceKernel, Kernel: &k, Stream: -1}
}

// kernelLane is the kernel's side of the sockets.
type kernelLane struct{ ev *KernelEvent }

func (l kernelLane) kind() string                              { return l.ev.Kind.String() }
func (l kernelLane) endpoints() (local, remote netip.AddrPort) { return l.ev.Local, l.ev.Remote }
func (l kernelLane) payload() []byte                           { return nil }
func (l kernelLane) side() Side                                { return l.ev.Side }
func (l kernelLane) glyph() string                             { return "◇ " }
func (l kernelLane) style(s *Styles) style                     { return s.kernel }

func (l kernelLane) summary(payloadLen int) string {
	ev := l.ev
	who := ev.Side.String()
	if who == "" {
		who = "socket"
	}
	if ev.Kind == KernelCwnd {
		s := who + " cwnd " + strconv.FormatUint(uint64(ev.Cwnd), 10)
		if ev.Peak > ev.Cwnd {
			s += " (peak " + strconv.FormatUint(uint64(ev.Peak), 10) + ")"
		}
		s += " · " + strconv.FormatUint(uint64(ev.InFlight), 10) + " in flight"
		if ev.Ssthresh > 0 {
			s += " · ssthresh " + strconv.FormatUint(uint64(ev.Ssthresh), 10)
		}
		return s + " · " + strings.ReplaceAll(ev.Phase, "-", " ")
	}
	if ev.Kind == KernelQueue {
		if ev.Listener {
			return who + " accept queue " + strconv.FormatUint(uint64(ev.AcceptQueue), 10) + " of backlog " + strconv.FormatUint(uint64(ev.Backlog), 10)
		}
		s := who + " recv-q " + strconv.FormatUint(uint64(ev.RecvQueue), 10) + " send-q " + strconv.FormatUint(uint64(ev.SendQueue), 10)
		if ev.HasWindow {
			s += " window " + strconv.FormatUint(uint64(ev.Window), 10)
		}
		return s
	}
	s := who + " " + ev.Old + " → " + ev.New
	if ev.New == "TIME_WAIT" && ev.TimeLeft > 0 {
		s += " (" + strconv.Itoa(int(ev.TimeLeft.Round(time.Second)/time.Second)) + " s left)"
	}
	return s
}

func (l kernelLane) short(payloadLen int) string { return l.summary(payloadLen) }

// stateNotes explain the transitions a learner meets, by "OLD NEW".
var stateNotes = map[string]string{
	"CLOSE LISTEN":           "listen(): the kernel accepts connections on this port from now on",
	"CLOSE SYN_SENT":         "connect(): the kernel sends the SYN",
	"LISTEN SYN_RECV":        "a SYN came: a new socket for this connection; the listener stays LISTEN",
	"SYN_SENT ESTABLISHED":   "the SYN+ACK came: the client's side is open",
	"SYN_RECV ESTABLISHED":   "the last ACK of the handshake came: the connection waits for accept()",
	"ESTABLISHED FIN_WAIT1":  "this side sent its FIN",
	"ESTABLISHED CLOSE_WAIT": "the peer's FIN came: this side may still send, then it closes",
	"FIN_WAIT1 FIN_WAIT2":    "its FIN was acknowledged: now it waits for the peer's FIN",
	"FIN_WAIT1 CLOSING":      "both FINs crossed: each side waits for the ACK of its own",
	"FIN_WAIT2 TIME_WAIT":    "both FINs are done; the side that closed first waits, to answer a lost last ACK",
	"CLOSING TIME_WAIT":      "both FINs are done; this side waits, to answer a lost last ACK",
	"FIN_WAIT2 CLOSE":        "closed",
	"CLOSE_WAIT LAST_ACK":    "this side sent its FIN too, and waits for the last ACK",
	"LAST_ACK CLOSE":         "the last ACK came: the socket is gone, no waiting on this side",
	"ESTABLISHED CLOSE":      "reset: the socket is gone at once, no FIN and no TIME_WAIT",
	"CLOSE_WAIT CLOSE":       "reset: the socket is gone at once",
	"SYN_SENT CLOSE":         "the connection attempt ended: refused, or no answer",
	"SYN_RECV CLOSE":         "the half-open connection was dropped",
	"LISTEN CLOSE":           "the listening socket is closed",
	"FIN_WAIT1 CLOSE":        "reset while closing: the socket is gone at once",
	"TIME_WAIT CLOSE":        "TIME_WAIT is over",
}

// phaseNotes explain a congestion window event by its phase.
var phaseNotes = map[string]string{
	PhaseSlowStart: "segments the sender may have unacknowledged; slow start: +1 per ACK, doubling every round trip",
	PhaseAvoidance: "past the threshold the window grows slowly, about one segment per round trip",
	PhaseDisorder:  "duplicate ACKs: the sender watches for a loss",
	PhaseRecovery:  "a loss found by duplicate ACKs: the window is cut while the lost segment is repaired",
	PhaseLoss:      "a retransmission timeout: the window falls to one segment, slow start again",
	PhaseReduce:    "the window is being reduced",
}

func (l kernelLane) note(payloadLen int) string {
	ev := l.ev
	if ev.Kind == KernelCwnd {
		return phaseNotes[ev.Phase]
	}
	if ev.Kind == KernelQueue {
		if ev.Listener {
			return "handshakes the kernel finished, waiting for your code's accept()"
		}
		if ev.HasWindow && ev.Window == 0 {
			return "bytes the kernel holds for the program; no room left: the window is closed"
		}
		return "bytes the kernel holds: received and not yet read, sent and not yet acknowledged"
	}
	return stateNotes[ev.Old+" "+ev.New]
}

func (l kernelLane) fill(j *JSONProgramEvent) {
	ev := l.ev
	j.Side = ev.Side.String()
	if ev.Kind == KernelState {
		j.Old, j.New, j.PID, j.Comm = ev.Old, ev.New, ev.PID, ev.Comm
		if ev.TimeLeft > 0 {
			ms := ev.TimeLeft.Milliseconds()
			j.TimeLeftMS = &ms
		}
		return
	}
	if ev.Kind == KernelCwnd {
		j.Cwnd, j.Ssthresh, j.InFlight, j.Phase = &ev.Cwnd, ev.Ssthresh, &ev.InFlight, ev.Phase
		if ev.RTT > 0 {
			us := ev.RTT.Microseconds()
			j.RTTMicros = &us
		}
		return
	}
	if ev.Listener {
		j.AcceptQueue, j.Backlog = &ev.AcceptQueue, &ev.Backlog
		return
	}
	j.RecvQueue, j.SendQueue = &ev.RecvQueue, &ev.SendQueue
	if ev.HasWindow {
		j.Window = &ev.Window
	}
}
