package netlab

import (
	"errors"
	"fmt"
	"time"
)

// Errors New returns when the machine cannot host a lab. Match them with
// errors.Is; the error's message is one line saying what is missing.
var (
	// ErrPermission: the process may not create namespaces or TUN devices
	// (it is not root).
	ErrPermission = errors.New("netlab: permission denied")
	// ErrUnsupported: the system lacks what the lab needs (not Linux, no
	// network namespaces, no /dev/net/tun).
	ErrUnsupported = errors.New("netlab: not supported here")
	// ErrClosed is returned by InClient and InServer after Close.
	ErrClosed = errors.New("netlab: lab is closed")
)

// setupError is a failure to build the lab, with a sentence for the learner
// (what is missing) and the system's error underneath.
type setupError struct {
	kind error // ErrPermission, ErrUnsupported or nil
	what string
	err  error
}

func (e *setupError) Error() string {
	if e.err == nil {
		return "netlab: " + e.what
	}
	return "netlab: " + e.what + ": " + e.err.Error()
}

func (e *setupError) Unwrap() error { return e.err }

func (e *setupError) Is(target error) bool { return e.kind != nil && target == e.kind }

// EventKind says what the link did to a packet.
type EventKind uint8

const (
	Dropped    EventKind = iota // the packet never reached the other side
	Duplicated                  // the packet was sent twice
	HeldBack                    // the packet will be sent after the next one
)

var eventKindNames = [...]string{Dropped: "dropped", Duplicated: "duplicated", HeldBack: "held back"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Cause says why the link acted.
type Cause uint8

const (
	ByRule   Cause = iota // a Rule picked the packet
	ByChance              // Loss, Duplicate or Reorder probability
	ByRate                // the rate limit's queue was full
)

// Event is something the link did to one packet, for a timeline to show
// next to the segment: "the link dropped this segment". Forwarded and delayed
// packets make no event (they are counted in Stats).
type Event struct {
	// Time is when the packet reached the link, on the clock the packet
	// capture uses.
	Time      time.Time
	Direction Direction
	Kind      EventKind
	Cause     Cause
	// Rule is, for Cause ByRule, the rule's index in Link.Rules and
	// RuleName its description; -1 and "" otherwise.
	Rule     int
	RuleName string
	Packet   Packet
}

// Reason is a short phrase for a timeline: "rule: drop the 3rd data
// segment client→server, once", "random loss", "rate limit queue full".
func (e Event) Reason() string {
	switch e.Cause {
	case ByRule:
		return "rule: " + e.RuleName
	case ByRate:
		return "rate limit queue full"
	}
	switch e.Kind {
	case Dropped:
		return "random loss"
	case Duplicated:
		return "random duplication"
	default:
		return "random reordering"
	}
}

func (e Event) String() string {
	return fmt.Sprintf("link %s %s %s (%s)", e.Kind, e.Direction, e.Packet, e.Reason())
}

// Counters are what the link did in one direction since the lab started.
type Counters struct {
	// Received counts packets for the other side read from this side.
	Received uint64
	// Forwarded counts packets written to the other side (duplicates
	// included), and Bytes their size.
	Forwarded uint64
	Bytes     uint64
	// Dropped, by cause.
	DroppedByRule uint64
	DroppedByLoss uint64
	DroppedByRate uint64
	// Delayed counts packets that waited in the link (Delay, the rate
	// limit's queue, or behind another waiting packet).
	Delayed    uint64
	Duplicated uint64
	Reordered  uint64
	// Ignored counts packets not addressed to the other side (IPv6
	// multicast listener reports, anything for an address outside the
	// lab): they are not forwarded.
	Ignored uint64
}

// Dropped is the total of packets the link dropped.
func (c Counters) Dropped() uint64 { return c.DroppedByRule + c.DroppedByLoss + c.DroppedByRate }

// Stats are both directions' counters and, for the current Link's rules,
// how many packets each rule has acted on (index as in Link.Rules).
type Stats struct {
	ClientToServer Counters
	ServerToClient Counters
	RuleHits       []uint64
}
