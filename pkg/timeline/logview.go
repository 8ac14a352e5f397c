package timeline

import (
	"bufio"
	"io"
	"net/netip"
	"strconv"
	"strings"
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
//
// Given a terminal's width (SetWidth), every line fits it: the columns are
// narrower, and what doesn't fit (the numbers, the preview, the note) goes
// on indented continuation lines, broken between words. Without a width
// (pipes, files) each event stays one line.
type LogView struct {
	w      *bufio.Writer
	styles *Styles
	start  time.Time
	width  int // 0: one line per event, however long
	// several: more than one connection has been seen, so the programs'
	// and the kernel's lines say which one they belong to ("#1").
	several bool
	first   int64 // the first connection seen, -1 before any
	line    []byte
	field   []byte
}

// SetWidth makes every line fit a terminal this many columns wide.
func (v *LogView) SetWidth(columns int) { v.width = columns }

// NewLogView writes lines to w. Times are shown relative to start; a zero
// start means "the first event".
func NewLogView(w io.Writer, styles *Styles, start time.Time) *LogView {
	return &LogView{w: bufio.NewWriterSize(w, 64<<10), styles: styles, start: start, first: -1}
}

// Render writes one event's line.
func (v *LogView) Render(e Event) error {
	if v.start.IsZero() {
		v.start = e.Time
	}
	switch {
	case e.Stream < 0:
	case v.first < 0:
		v.first = e.Stream
	case e.Stream != v.first:
		v.several = true
	}
	if v.width > 0 {
		v.line = v.appendFitted(v.line[:0], &e)
	} else {
		v.line = v.appendLine(v.line[:0], &e)
	}
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
	b = appendSource(b, s, sourceLabel(e))
	if e.Source == SourceWire {
		b = v.appendSegment(b, &e.Segment)
	} else {
		b = v.appendProgramEvent(b, e)
	}
	if e.Late {
		b = s.warn.append(b, "  (arrived late: shown out of order)")
	}
	return append(b, '\n')
}

// appendProgramEvent writes a server, client or kernel event: its marker,
// what its source saw, and what it means.
func (v *LogView) appendProgramEvent(b []byte, e *Event) []byte {
	s := v.styles
	l := e.lane()
	st := l.style(s)
	b = append(b, l.glyph()...)
	v.field = append(v.field[:0], e.Kind()...)
	b = appendPadRight(b, st, v.field, kindWidth+flagsWidth)
	b = append(b, v.streamLabel(e)...)
	b = append(b, ProgramSummary(e)...)
	if payload := e.Payload(); len(payload) > 0 {
		b = append(b, ' ')
		b = AppendEscaped(b, s, payload, previewBytes, e.PayloadLen())
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

// appendNumbers writes the numbers a learner sees for this kind of segment,
// in every view (log, ladder, HTML): seq for SYNs, ack for ACKs, the byte
// range and length for data, as tcpdump writes them; the window on a SYN
// (where it is announced, unscaled) and when a remark is about it.
func appendNumbers(b []byte, seg *capture.Segment) []byte {
	start := len(b) // what b held before: a separator is only needed after our own numbers
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
		if len(b) > start {
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

// appendRelTime writes "+1.251 ms" below ten seconds, "+12.345678 s" above,
// always 12 cells wide up to a day.
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
	// Fewer decimals as the seconds grow, so the column keeps its width
	// (12 cells) for hours: +12.345678 s, +123.45678 s, +1234.5678 s.
	decimals := 6
	for limit := 100 * time.Second; d >= limit && decimals > 1; limit *= 10 {
		decimals--
	}
	b = strconv.AppendFloat(b, d.Seconds(), 'f', decimals, 64)
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

// Narrow layout: the head's columns, then pieces that wrap.
const (
	narrowTimeWidth  = 11
	narrowFlagsWidth = 5
	continuation     = 14 // indent of a continuation line
)

// fitter lays pieces out within a width, starting continuation lines
// (indented) where the next piece doesn't fit.
type fitter struct {
	b     []byte
	width int
	col   int // visible column of the current line's end
}

// add appends a piece of visible width w after sep, on a new line if it
// doesn't fit.
func (f *fitter) add(sep string, piece []byte, w int) {
	if f.col+len(sep)+w > f.width && f.col > continuation {
		f.newLine()
		sep = ""
	}
	f.b = append(f.b, sep...)
	f.b = append(f.b, piece...)
	f.col += len(sep) + w
}

func (f *fitter) newLine() {
	f.b = append(f.b, '\n')
	for range continuation {
		f.b = append(f.b, ' ')
	}
	f.col = continuation
}

// addWords adds text word by word in one style; it starts on a new line
// unless all of it fits on this one.
func (f *fitter) addWords(sep string, st style, text string) {
	words := strings.Fields(text)
	if len(words) == 0 {
		return
	}
	if f.col+len(sep)+utf8.RuneCountInString(text) > f.width && f.col > continuation {
		f.newLine()
		sep = ""
	}
	for i, w := range words {
		if i > 0 {
			sep = " "
		}
		f.add(sep, st.append(nil, w), utf8.RuneCountInString(w))
	}
}

// appendFitted writes one event in the narrow layout.
func (v *LogView) appendFitted(b []byte, e *Event) []byte {
	s := v.styles
	v.field = appendRelTime(v.field[:0], e.Time.Sub(v.start))
	b = appendPadLeft(b, s.time, v.field, narrowTimeWidth)
	b = append(b, ' ')
	label := sourceLabel(e)
	b = appendSource(b, s, label)
	f := fitter{b: b, width: v.width, col: max(narrowTimeWidth, len(v.field)) + 1 + max(sourceWidth, utf8.RuneCountInString(label)+1)}
	var note string
	noteStyle := s.dim
	switch e.Source {
	case SourceWire:
		seg := &e.Segment
		kindStyle := s.kind[seg.Kind]
		arrow := "← "
		if seg.FromClient {
			arrow = "→ "
		}
		f.b = append(f.b, arrow...)
		f.b = appendPadRight(f.b, kindStyle, []byte(seg.Kind.String()), kindWidth)
		v.field = append(v.field[:0], '[')
		v.field = seg.Flags.AppendLetters(v.field)
		v.field = append(v.field, ']')
		f.b = appendPadRight(f.b, kindStyle, v.field, narrowFlagsWidth)
		f.col += 2 + kindWidth + max(narrowFlagsWidth, len(v.field))
		v.field = appendEndpoints(v.field[:0], seg)
		f.add("", v.field, utf8.RuneCount(v.field))
		v.field = appendNumbers(v.field[:0], seg)
		f.add(" ", v.field, utf8.RuneCount(v.field))
		if seg.Len > 0 {
			preview := AppendEscaped(nil, s, seg.Preview(), previewBytes, seg.Len)
			f.add(" ", preview, visibleCells(preview))
		}
		note = SegmentNote(seg)
		if seg.Analysis != 0 {
			noteStyle = s.warn
		}
	default:
		l := e.lane()
		st := l.style(s)
		f.b = append(f.b, l.glyph()...)
		f.b = appendPadRight(f.b, st, []byte(e.Kind()), kindWidth+narrowFlagsWidth)
		f.col += 2 + max(kindWidth+narrowFlagsWidth, len(e.Kind()))
		for i, w := range strings.Fields(v.streamLabel(e) + ProgramSummary(e)) {
			sep := " "
			if i == 0 {
				sep = ""
			}
			f.add(sep, []byte(w), utf8.RuneCountInString(w))
		}
		if payload := e.Payload(); len(payload) > 0 {
			preview := AppendEscaped(nil, s, payload, previewBytes, e.PayloadLen())
			f.add(" ", preview, visibleCells(preview))
		}
		note = ProgramNote(e)
	}
	f.addWords("  ", noteStyle, note)
	if e.Late {
		f.addWords("  ", s.warn, "(arrived late: shown out of order)")
	}
	return append(f.b, '\n')
}

// visibleCells counts the cells styled text takes: escape sequences of
// the styles take none.
func visibleCells(b []byte) int {
	n := 0
	for i := 0; i < len(b); {
		if b[i] == 0x1b {
			for i < len(b) && !(b[i] >= 'A' && b[i] <= 'Z' || b[i] >= 'a' && b[i] <= 'z') {
				i++
			}
			i++
			continue
		}
		_, size := utf8.DecodeRune(b[i:])
		i += size
		n++
	}
	return n
}

// sourceLabel is the lane column: the source, or for a process's calls
// the process, "node[4242]".
func sourceLabel(e *Event) string {
	if e.Source == SourceProcess {
		return e.Process.Label()
	}
	return e.Source.String()
}

// appendSource writes the lane column; a label wider than the column (a
// process's) shifts the rest of its line, after one space.
func appendSource(b []byte, s *Styles, label string) []byte {
	b = appendPadRight(b, s.source, []byte(label), sourceWidth)
	if utf8.RuneCountInString(label) >= sourceWidth {
		b = append(b, ' ')
	}
	return b
}

// streamLabel is "#1 " for an event of connection 1 once more than one
// connection has been seen, so that two conversations side by side can be
// told apart; "" otherwise.
func (v *LogView) streamLabel(e *Event) string {
	if !v.several || e.Stream < 0 {
		return ""
	}
	return streamPrefix(e.Stream)
}
