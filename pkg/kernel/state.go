package kernel

import "strconv"

// State is a TCP socket's state, numbered as the kernel numbers them
// (include/net/tcp_states.h).
type State uint8

// The TCP states. NewSynRecv is a request socket: a SYN received by a
// listener, answered, waiting for the handshake's last ACK.
const (
	Established State = 1 + iota
	SynSent
	SynRecv
	FinWait1
	FinWait2
	TimeWait
	Close
	CloseWait
	LastAck
	Listen
	Closing
	NewSynRecv
)

var stateNames = [...]string{
	Established: "ESTABLISHED",
	SynSent:     "SYN_SENT",
	SynRecv:     "SYN_RECV",
	FinWait1:    "FIN_WAIT1",
	FinWait2:    "FIN_WAIT2",
	TimeWait:    "TIME_WAIT",
	Close:       "CLOSE",
	CloseWait:   "CLOSE_WAIT",
	LastAck:     "LAST_ACK",
	Listen:      "LISTEN",
	Closing:     "CLOSING",
	NewSynRecv:  "NEW_SYN_RECV",
}

// String gives the state's Linux name, as the tracepoint and ss print it
// (ss shortens some: ESTAB, SYN-SENT, UNCONN for CLOSE).
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "STATE(" + strconv.Itoa(int(s)) + ")"
}
