package timeline

import (
	"net/netip"
	"time"
)

// LinkEvent is something the lesson's link (pkg/netlab) did to one packet:
// it dropped it, sent it twice or held it back. The capture sees the
// sender's side of the link, so a dropped segment is on the wire once and
// never arrives: this line says why.
type LinkEvent struct {
	Time           time.Time
	What           string // "dropped", "duplicated", "held back"
	Reason         string // "rule: drop every SYN client→server"
	ClientToServer bool
	Src, Dst       netip.AddrPort // the packet's addresses, as on the wire
	Flags          string         // tcpdump's letters: S, P., ...
	Len            int            // TCP payload bytes
}

// LinkEventOf wraps a link event for the timeline.
func LinkEventOf(l LinkEvent) Event {
	return Event{Time: l.Time, Source: SourceLink, Link: &l, Stream: -1}
}

// linkLane is the lesson's link between the two namespaces.
type linkLane struct{ ev *LinkEvent }

func (l linkLane) kind() string                              { return l.ev.What }
func (l linkLane) endpoints() (local, remote netip.AddrPort) { return l.ev.Src, l.ev.Dst }
func (l linkLane) payload() []byte                           { return nil }
func (l linkLane) glyph() string                             { return "✕ " }
func (l linkLane) style(s *Styles) style                     { return s.warn }

// side is the sender's: the end whose segment it was.
func (l linkLane) side() Side {
	if l.ev.ClientToServer {
		return SideClient
	}
	return SideServer
}

func (l linkLane) summary(payloadLen int) string {
	arrow := "→"
	if !l.ev.ClientToServer {
		arrow = "←"
	}
	s := arrow + " [" + l.ev.Flags + "]"
	if l.ev.Len > 0 {
		s += " " + Plural(l.ev.Len, "byte")
	}
	return s
}

func (l linkLane) short(payloadLen int) string { return l.summary(payloadLen) }

func (l linkLane) note(payloadLen int) string {
	switch l.ev.What {
	case "dropped":
		return "the link lost it: it never reaches the other side (" + l.ev.Reason + ")"
	case "duplicated":
		return "the link delivers it twice (" + l.ev.Reason + ")"
	}
	return "the link delivers it after the next one (" + l.ev.Reason + ")"
}

func (l linkLane) fill(j *JSONProgramEvent) {
	j.Side, j.Detail, j.Flags = l.side().String(), l.ev.Reason, l.ev.Flags
	j.Len = l.ev.Len
}
