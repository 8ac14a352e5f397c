package timeline

import (
	"bufio"
	"io"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tcp-playground/playground/pkg/capture"
)

// previewBytes is how much payload a log line shows; the rest is counted.
const previewBytes = 40

// Column widths of the log view, in terminal cells.
const (
	timeWidth      = 12 // "  +1234.567 ms"
	sourceWidth    = 7  // "server "
	kindWidth      = 8  // "SYN+ACK "
	flagsWidth     = 6  // "[FP.] "
	endpointsWidth = 26 // "127.0.0.1:53782 → :4000"
	numbersWidth   = 30 // "seq=1449:2897 ack=1 len=1448"
)

// LogView renders one line per event, as in DESIGN.md:
//
//	+1.251 ms  wire  → SYN     [S]   127.0.0.1:53782 → :4000   seq=0   handshake 1/3: the client asks to open a connection
type LogView struct {
	w      *bufio.Writer
	styles *Styles
	start  time.Time
	line   []byte
	field  []byte
}

// NewLogView writes lines to w. Times are shown relative to start; a zero
// start means "the first event".
func NewLogView(w io.Writer, styles *Styles, start time.Time) *LogView {
	return &LogView{w: bufio.NewWriterSize(w, 64<<10), styles: styles, start: start}
}

// Render writes one event's line.
func (v *LogView) Render(e Event) error {
	if v.start.IsZero() {
		v.start = e.Time
	}
	v.line = v.appendLine(v.line[:0], &e)
	_, err := v.w.Write(v.line)
	return err
}

// Flush writes out buffered lines.
func (v *LogView) Flush() error { return v.w.Flush() }

func (v *LogView) appendLine(b []byte, e *Event) []byte {
	s := v.styles
	v.field = appendRelTime(v.field[:0], e.Time.Sub(v.start))
	b = appendPadLeft(b, s.time, v.field, timeWidth)
	b = append(b, "  "...)
	b = appendPadRight(b, s.source, []byte(e.Source.String()), sourceWidth)
	switch e.Source {
	case SourceWire:
		b = v.appendSegment(b, &e.Segment)
	case SourceServer, SourceClient:
		b = v.appendProgramEvent(b, e)
	}
	if e.Late {
		b = s.warn.append(b, "  (arrived late: shown out of order)")
	}
	return append(b, '\n')
}

// appendProgramEvent writes a server or client event: a marker on its own
// side of the timeline, what the code saw, and what it means.
func (v *LogView) appendProgramEvent(b []byte, e *Event) []byte {
	s := v.styles
	st, marker := s.server, "● "
	if e.Source == SourceClient {
		st, marker = s.client, "○ "
	}
	b = append(b, marker...)
	v.field = append(v.field[:0], e.Kind()...)
	b = appendPadRight(b, st, v.field, kindWidth+flagsWidth)
	b = append(b, ProgramSummary(e)...)
	if payload := e.Payload(); len(payload) > 0 {
		b = append(b, ' ')
		b = AppendEscaped(b, s, payload, previewBytes, len(payload))
	}
	if note := ProgramNote(e); note != "" {
		b = append(b, "  "...)
		b = s.dim.append(b, note)
	}
	return b
}

func (v *LogView) appendSegment(b []byte, seg *capture.Segment) []byte {
	s := v.styles
	kindStyle := s.kind[seg.Kind]
	if seg.FromClient {
		b = append(b, "→ "...)
	} else {
		b = append(b, "← "...)
	}
	b = appendPadRight(b, kindStyle, []byte(seg.Kind.String()), kindWidth)

	v.field = append(v.field[:0], '[')
	if seg.Kind == capture.KindCut {
		v.field = append(v.field, '?') // the flags were cut off
	} else {
		v.field = seg.Flags.AppendLetters(v.field)
	}
	v.field = append(v.field, ']')
	b = appendPadRight(b, kindStyle, v.field, flagsWidth)

	v.field = appendEndpoints(v.field[:0], seg)
	b = appendPadRight(b, style{}, v.field, endpointsWidth)
	b = append(b, ' ')

	v.field = appendNumbers(v.field[:0], seg)
	b = appendPadRight(b, style{}, v.field, numbersWidth)

	if seg.Len > 0 {
		b = append(b, ' ')
		b = AppendEscaped(b, s, seg.Preview(), previewBytes, seg.Len)
	}
	if note := SegmentNote(seg); note != "" {
		b = append(b, "  "...)
		if seg.Analysis != 0 {
			b = s.warn.append(b, note)
		} else {
			b = s.dim.append(b, note)
		}
	}
	return b
}

// appendEndpoints writes "src → dst"; the server's side is shortened to
// ":port" when both sides share an address, as on loopback.
func appendEndpoints(b []byte, seg *capture.Segment) []byte {
	sameAddr := seg.Src.Addr() == seg.Dst.Addr()
	appendSide := func(b []byte, ap netip.AddrPort, isServer bool) []byte {
		if isServer && sameAddr {
			return strconv.AppendUint(append(b, ':'), uint64(ap.Port()), 10)
		}
		return ap.AppendTo(b)
	}
	b = appendSide(b, seg.Src, !seg.FromClient)
	b = append(b, " → "...)
	return appendSide(b, seg.Dst, seg.FromClient)
}

// appendNumbers writes the sequence numbers a learner needs for this kind:
// seq for SYNs, ack for ACKs, the byte range for data, as tcpdump writes it.
func appendNumbers(b []byte, seg *capture.Segment) []byte {
	hasAck := seg.Flags&capture.FlagACK != 0
	seq := func(b []byte) []byte {
		b = append(b, "seq="...)
		b = strconv.AppendUint(b, uint64(seg.Seq), 10)
		if seg.Len > 0 {
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(seg.SeqEnd()), 10)
		}
		return b
	}
	ack := func(b []byte) []byte {
		if !hasAck {
			return b
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		return strconv.AppendUint(append(b, "ack="...), uint64(seg.Ack), 10)
	}
	switch seg.Kind {
	case capture.KindCut:
		return b // no numbers: the snap length cut them
	case capture.KindACK:
		b = ack(b)
	default:
		b = ack(seq(b))
	}
	if seg.Len > 0 {
		b = strconv.AppendInt(append(b, " len="...), int64(seg.Len), 10)
	}
	const windowRemarks = capture.ZeroWindow | capture.WindowUpdate // remarks about the sender's own window
	if seg.Analysis&windowRemarks != 0 || seg.Kind == capture.KindSYN || seg.Kind == capture.KindSYNACK {
		b = strconv.AppendUint(append(b, " win="...), seg.ScaledWindow(), 10)
	}
	return b
}

// appendRelTime writes "+1.251 ms" below ten seconds, "+12.345678 s" above.
func appendRelTime(b []byte, d time.Duration) []byte {
	sign := byte('+')
	if d < 0 {
		sign, d = '-', -d
	}
	b = append(b, sign)
	if d < 10*time.Second {
		b = strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 3, 64)
		return append(b, " ms"...)
	}
	b = strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64)
	return append(b, " s"...)
}

func appendPadRight(b []byte, st style, text []byte, width int) []byte {
	b = append(b, st.on...)
	b = append(b, text...)
	b = append(b, st.off...)
	for n := utf8.RuneCount(text); n < width; n++ {
		b = append(b, ' ')
	}
	return b
}

func appendPadLeft(b []byte, st style, text []byte, width int) []byte {
	for n := utf8.RuneCount(text); n < width; n++ {
		b = append(b, ' ')
	}
	b = append(b, st.on...)
	b = append(b, text...)
	return append(b, st.off...)
}
