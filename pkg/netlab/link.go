package netlab

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Direction is the way a packet travels on the link.
type Direction uint8

const (
	ClientToServer Direction = 1 << iota
	ServerToClient
)

func (d Direction) String() string {
	switch d {
	case ClientToServer:
		return "client→server"
	case ServerToClient:
		return "server→client"
	case ClientToServer | ServerToClient, 0:
		return "both directions"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// DefaultQueueBytes bounds the queue in front of a rate limit when
// Impairment.QueueBytes is 0: 64 KiB, about 44 full-size segments, the
// order of a small router's buffer.
const DefaultQueueBytes = 64 << 10

// Impairment is what the link does to the packets of one direction.
// The zero value is a perfect wire: no delay, no loss, no limit.
type Impairment struct {
	// Delay is added to every packet. Order is kept: a packet never
	// overtakes an earlier one of the same direction (except by Reorder),
	// even when Delay is lowered while packets are in flight.
	Delay time.Duration
	// Loss is the probability (0..1) that a packet is dropped.
	Loss float64
	// Duplicate is the probability (0..1) that a packet is sent twice.
	Duplicate float64
	// Reorder is the probability (0..1) that a packet is held back and sent
	// right after the next packet of the same direction (if none follows
	// within ReorderHoldLimit, it goes alone).
	Reorder float64
	// Rate, if > 0, limits the direction to that many bytes per second
	// (IP packets, headers included). Packets wait in a queue of at most
	// QueueBytes; a packet that does not fit is dropped, as a router would.
	Rate int64
	// QueueBytes bounds the rate limit's queue; 0 means DefaultQueueBytes.
	QueueBytes int
}

// ReorderHoldLimit is how long a packet held back for reordering waits for
// a next packet to let by; after it, it is sent anyway, so that reordering
// the last packet of a burst does not turn into losing it.
const ReorderHoldLimit = 50 * time.Millisecond

func (im Impairment) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"loss", im.Loss}, {"duplicate", im.Duplicate}, {"reorder", im.Reorder}} {
		if math.IsNaN(p.v) || p.v < 0 || p.v > 1 {
			return fmt.Errorf("netlab: %s probability %v: want 0..1", p.name, p.v)
		}
	}
	if im.Delay < 0 || im.Rate < 0 || im.QueueBytes < 0 {
		return errors.New("netlab: delay, rate and queue size must not be negative")
	}
	return nil
}

// Link is the whole state of the link: one Impairment per direction and the
// deterministic rules. Lab.SetLink replaces it at any time.
type Link struct {
	ClientToServer Impairment
	ServerToClient Impairment
	// Rules are checked in order for each TCP segment, before random loss;
	// the first rule whose Action is Drop and that applies drops it.
	Rules []Rule
	// Seed, if not 0, restarts the random generators (Loss, Duplicate,
	// Reorder) from this seed when the Link is set, so a step's losses are
	// the same on every run. With 0 the generators go on as they were
	// (seeded from the clock when the lab was made).
	Seed uint64
}

// Symmetric is a Link with the same impairment both ways (and no rules).
func Symmetric(im Impairment) Link {
	return Link{ClientToServer: im, ServerToClient: im}
}

func (l Link) validate() error {
	if err := l.ClientToServer.validate(); err != nil {
		return fmt.Errorf("%w (client→server)", err)
	}
	if err := l.ServerToClient.validate(); err != nil {
		return fmt.Errorf("%w (server→client)", err)
	}
	for i, r := range l.Rules {
		if r.Nth < 0 || r.Count < 0 {
			return fmt.Errorf("netlab: rule %d (%s): Nth and Count must not be negative", i, r)
		}
		if r.Direction&^(ClientToServer|ServerToClient) != 0 {
			return fmt.Errorf("netlab: rule %d: unknown direction %d", i, r.Direction)
		}
		if r.Action > HoldBack {
			return fmt.Errorf("netlab: rule %d: unknown action %d", i, r.Action)
		}
	}
	return nil
}

// TCPFlags are the flag bits of a TCP header, as on the wire.
type TCPFlags uint8

const (
	FlagFIN TCPFlags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// String gives the flags as tcpdump prints them: "S", "S.", "P.", "F.".
func (f TCPFlags) String() string {
	var b strings.Builder
	for _, x := range []struct {
		f TCPFlags
		c byte
	}{{FlagSYN, 'S'}, {FlagFIN, 'F'}, {FlagPSH, 'P'}, {FlagRST, 'R'}, {FlagURG, 'U'}, {FlagECE, 'E'}, {FlagCWR, 'W'}} {
		if f&x.f != 0 {
			b.WriteByte(x.c)
		}
	}
	if f&FlagACK != 0 {
		b.WriteByte('.')
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// PayloadMatch says whether a rule wants segments with or without data.
type PayloadMatch uint8

const (
	AnyPayload PayloadMatch = iota
	WithPayload
	NoPayload
)

// Match selects TCP segments. The zero Match selects every TCP segment;
// rules never apply to other protocols.
type Match struct {
	// Flags must all be set.
	Flags TCPFlags
	// NotFlags must all be clear.
	NotFlags TCPFlags
	Payload  PayloadMatch
	// Port, if not 0, must be the segment's source or destination port.
	Port uint16
}

// The segments lessons talk about.
var (
	// MatchSYN is a connection request: SYN without ACK (not the SYN+ACK).
	MatchSYN = Match{Flags: FlagSYN, NotFlags: FlagACK}
	// MatchSYNACK is the answer to a SYN.
	MatchSYNACK = Match{Flags: FlagSYN | FlagACK}
	// MatchData is a segment that carries bytes of the stream.
	MatchData = Match{Payload: WithPayload}
	// MatchPureACK is an acknowledgment and nothing else (no data, SYN,
	// FIN or RST): the dup ACKs of fast retransmit.
	MatchPureACK = Match{Flags: FlagACK, NotFlags: FlagSYN | FlagFIN | FlagRST, Payload: NoPayload}
	// MatchFIN is a segment that closes one direction.
	MatchFIN = Match{Flags: FlagFIN}
)

func (m Match) matches(p *Packet) bool {
	if !p.IsTCP() {
		return false
	}
	if p.Flags&m.Flags != m.Flags || p.Flags&m.NotFlags != 0 {
		return false
	}
	switch m.Payload {
	case WithPayload:
		if p.PayloadLen == 0 {
			return false
		}
	case NoPayload:
		if p.PayloadLen != 0 {
			return false
		}
	}
	if m.Port != 0 && p.Src.Port() != m.Port && p.Dst.Port() != m.Port {
		return false
	}
	return true
}

func (m Match) String() string {
	switch m {
	case Match{}:
		return "segment"
	case MatchSYN:
		return "SYN"
	case MatchSYNACK:
		return "SYN+ACK"
	case MatchData:
		return "data segment"
	case MatchPureACK:
		return "pure ACK"
	case MatchFIN:
		return "FIN"
	}
	var parts []string
	if m.Flags != 0 {
		parts = append(parts, "flags "+m.Flags.String())
	}
	if m.NotFlags != 0 {
		parts = append(parts, "not "+m.NotFlags.String())
	}
	switch m.Payload {
	case WithPayload:
		parts = append(parts, "with data")
	case NoPayload:
		parts = append(parts, "without data")
	}
	if m.Port != 0 {
		parts = append(parts, fmt.Sprintf("port %d", m.Port))
	}
	return "segment (" + strings.Join(parts, ", ") + ")"
}

// Action is what a rule does to the segments it picks.
type Action uint8

const (
	Drop      Action = iota // the segment is lost
	Duplicate               // the segment is sent twice
	HoldBack                // the segment is sent after the next one (reordering)
)

var actionNames = [...]string{Drop: "drop", Duplicate: "duplicate", HoldBack: "hold back"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Rule is a deterministic impairment: "drop the 3rd data segment from the
// client, once", "drop every SYN". A rule counts the segments of its
// direction that match it, from the moment its Link is set, and acts on the
// Nth and the Count-1 matching ones after it. Retransmissions are segments
// like any other: with Nth 3 and Count 1 the retransmitted third segment is
// the 4th occurrence and goes through.
type Rule struct {
	// Name, if set, is how events and String describe the rule.
	Name string
	// Direction is ClientToServer, ServerToClient, or 0 for both (each
	// direction then counts its own occurrences).
	Direction Direction
	Match     Match
	// Nth is the first matching segment acted on, from 1; 0 means 1.
	Nth int
	// Count is how many matching segments, from the Nth on, are acted on;
	// 0 means all of them.
	Count  int
	Action Action
}

// DropNth drops the nth (from 1) segment matching m in direction d, once.
func DropNth(d Direction, m Match, n int) Rule {
	return Rule{Direction: d, Match: m, Nth: n, Count: 1}
}

// DropAll drops every segment matching m in direction d.
func DropAll(d Direction, m Match) Rule {
	return Rule{Direction: d, Match: m}
}

func (r Rule) String() string {
	if r.Name != "" {
		return r.Name
	}
	nth := max(r.Nth, 1)
	var which, tail string
	switch {
	case r.Count == 0 && nth == 1:
		which = "every " + r.Match.String()
	case r.Count == 0:
		which = fmt.Sprintf("every %s from the %s on", r.Match, ordinal(nth))
	case r.Count == 1:
		which, tail = fmt.Sprintf("the %s %s", ordinal(nth), r.Match), ", once"
	default:
		which = fmt.Sprintf("%d %ss from the %s", r.Count, r.Match, ordinal(nth))
	}
	return fmt.Sprintf("%s %s %s%s", r.Action, which, r.Direction, tail)
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
