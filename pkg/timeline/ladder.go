package timeline

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Layout of the ladder view, in terminal cells.
const (
	ladderWidth     = 80 // when NewLadderView is given no width
	ladderLabelMin  = 4  // "#12 ": the connection label and its space
	ladderMinGap    = 24 // the narrowest space between the lanes
	ladderIdealGap  = 54 // the space between the lanes once a note column fits
	ladderNoteMin   = 24 // the narrowest note column worth showing
	ladderNoteMax   = 72 // a note column wide enough for most notes
	ladderLead      = 4  // "────" or "◀───" before an arrow's label
	ladderTail      = 2  // at least "─▶" or "──" after it
	ladderPreviewAt = 3  // fewest payload bytes worth previewing
)

// LadderView draws the timeline as a sequence diagram between a client
// lane (left) and a server lane (right), as in DESIGN.md:
//
//	#0                client 127.0.0.1:41304                   server 127.0.0.1:4000
//	#0     +0.000 ms  │──── SYN seq=0 ────────────────────────────────────────────▶│
//	#0     +0.013 ms  │◀─── SYN+ACK seq=0 ack=1 ───────────────────────────────────│
//	#0     +0.030 ms  │                          ● connection from 127.0.0.1:41304 │
//	#0     +0.118 ms  │──── DATA seq=1:7 len=6 "hello\n" ─────────────────────────▶│
//	#0     +0.119 ms  │ ○ read 17 bytes "Hello from server"                        │
//
// Each wire segment is an arrow in its direction, labelled with its kind,
// its numbers, Wireshark's remarks and an escaped payload preview; the
// server's and the client's own events are markers on their lanes. Every
// line starts with its connection's label (#0, #1... as tshark numbers
// streams), and a header names a connection's two ends when it first shows
// up. Lines fit the width given; on a wide terminal the plain-language
// notes of the log view follow in a column on the right.
type LadderView struct {
	w      *bufio.Writer
	styles *Styles
	width  int
	start  time.Time
	seen   map[int64]bool // connections whose header was written
	labelW int            // the connection label column, growing with the labels
	timeW  int            // the time column, growing past 100 s

	line  ladderLine
	label ladderLine // an arrow's label or a marker's text, before it is placed
	field []byte
}

// NewLadderView writes the ladder to w, width cells wide (80 when width is
// 0 or less; lanes never get closer than a minimum, so below 44 cells
// lines are wider than asked). Times are relative to start; a zero
// start means "the first event".
func NewLadderView(w io.Writer, styles *Styles, width int, start time.Time) *LadderView {
	if width <= 0 {
		width = ladderWidth
	}
	if styles == nil {
		styles = plainStyles
	}
	return &LadderView{
		w:      bufio.NewWriterSize(w, 64<<10),
		styles: styles,
		width:  width,
		start:  start,
		seen:   make(map[int64]bool),
		labelW: ladderLabelMin,
		timeW:  timeWidth,
	}
}

// Flush writes out buffered lines.
func (v *LadderView) Flush() error { return v.w.Flush() }

// Render writes one event's line, after its connection's header if the
// connection is new.
func (v *LadderView) Render(e Event) error {
	if v.start.IsZero() {
		v.start = e.Time
	}
	if label := streamLabel(e.Stream); len(label)+1 > v.labelW {
		v.labelW = len(label) + 1
	}
	v.field = appendRelTime(v.field[:0], e.Time.Sub(v.start))
	v.timeW = max(v.timeW, len(v.field))
	if e.Stream >= 0 && !v.seen[e.Stream] {
		if client, server, ok := ladderEnds(&e); ok {
			v.seen[e.Stream] = true
			if err := v.writeHeader(e.Stream, client, server); err != nil {
				return err
			}
		}
	}
	v.line.reset()
	v.appendPrefix(&e)
	lay := v.layout()
	var note string
	var noteStyle style
	switch e.Source {
	case SourceWire:
		v.appendArrow(lay.gap, &e)
		note, noteStyle = SegmentNote(&e.Segment), v.styles.dim
		if e.Segment.Analysis != 0 {
			noteStyle = v.styles.warn
		}
	default:
		v.appendMarker(lay.gap, &e)
		note, noteStyle = ProgramNote(&e), v.styles.dim
	}
	// The note goes in its column on a wide terminal; on a narrow one, on
	// lines of its own between the lanes. Either way it is wrapped between
	// words, never cut.
	var rest []string
	if note != "" {
		room := lay.note - 2
		if lay.note == 0 {
			room = lay.gap - 2
		}
		lines := wrapCells(note, room)
		if lay.note > 0 {
			v.line.pad(2)
			v.line.add(noteStyle, lines[0])
			lines = lines[1:]
		}
		rest = lines
	}
	v.line.b = append(v.line.b, '\n')
	for _, text := range rest {
		v.appendNoteLine(lay, noteStyle, text)
	}
	_, err := v.w.Write(v.line.b)
	return err
}

// appendNoteLine writes one more line of a note: in the note column, or
// between the lanes when there is none.
func (v *LadderView) appendNoteLine(lay ladderLayout, st style, text string) {
	s := v.styles
	v.line.pad(v.labelW + v.timeW + 2)
	v.line.add(s.dim, "│")
	if lay.note > 0 {
		v.line.pad(lay.gap)
		v.line.add(s.dim, "│")
		v.line.pad(2)
		v.line.add(st, text)
	} else {
		v.line.pad(1)
		v.line.add(st, text)
		v.line.pad(lay.gap - 1 - cells(text))
		v.line.add(s.dim, "│")
	}
	v.line.b = append(v.line.b, '\n')
}

// wrapCells breaks text between words into lines of at most width cells
// (a word longer than that is cut).
func wrapCells(text string, width int) []string {
	words := strings.Fields(text)
	for i, w := range words {
		words[i] = fitCells(w, width)
	}
	return WrapWords(words, width, cells)
}

// WrapWords breaks words into lines of at most width, as measure counts
// (a word wider than that gets a line of its own).
func WrapWords(words []string, width int, measure func(string) int) []string {
	var lines []string
	line := ""
	for _, w := range words {
		if line != "" && measure(line)+1+measure(w) > width {
			lines = append(lines, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// ladderLayout is the width of the space between the lanes and of the note
// column after the server lane (0: none).
type ladderLayout struct{ gap, note int }

// layout splits what is left of the width after the label, time and lane
// columns.
func (v *LadderView) layout() ladderLayout {
	rest := v.width - v.labelW - v.timeW - 2 - 2 // two spaces, two lane bars
	switch {
	case rest >= ladderIdealGap+ladderNoteMin:
		gap := max(ladderIdealGap, rest-ladderNoteMax)
		return ladderLayout{gap: gap, note: rest - gap}
	case rest < ladderMinGap:
		return ladderLayout{gap: ladderMinGap}
	}
	return ladderLayout{gap: rest}
}

// appendPrefix writes the connection label and the time.
func (v *LadderView) appendPrefix(e *Event) {
	v.line.addPadded(v.styles.dim, streamLabel(e.Stream), v.labelW)
	v.field = appendRelTime(v.field[:0], e.Time.Sub(v.start))
	v.line.pad(v.timeW - len(v.field))
	v.line.add(v.styles.time, string(v.field))
	v.line.pad(2)
}

// writeHeader names a new connection's ends above its lanes.
func (v *LadderView) writeHeader(stream int64, client, server string) error {
	s := v.styles
	lay := v.layout()
	v.line.reset()
	v.line.addPadded(s.dim, streamLabel(stream), v.labelW)
	v.line.pad(v.timeW + 2)
	// Both names share the lanes' span; each gets half when they do not fit.
	span := lay.gap + 2
	client, server = "client "+client, "server "+server
	if cells(client)+1+cells(server) > span {
		half := (span - 1) / 2
		client, server = fitCells(client, half), fitCells(server, span-1-cells(fitCells(client, half)))
	}
	c, _ := strings.CutPrefix(client, "client")
	v.line.add(s.client, "client")
	v.line.add(style{}, c)
	v.line.pad(span - cells(client) - cells(server))
	sv, _ := strings.CutPrefix(server, "server")
	v.line.add(s.server, "server")
	v.line.add(style{}, sv)
	v.line.b = append(v.line.b, '\n')
	_, err := v.w.Write(v.line.b)
	return err
}

// appendArrow draws a segment between the lanes:
// "│──── SYN seq=0 ────▶│" from the client, "│◀─── SYN+ACK … ─────│" from the server.
func (v *LadderView) appendArrow(gap int, e *Event) {
	s := v.styles
	seg := &e.Segment
	kst := s.kind[seg.Kind]
	bar := s.dim

	label := &v.label
	label.reset()
	budget := gap - ladderLead - ladderTail - 2
	v.field = appendNumbers(append(v.field[:0], ' '), seg)
	pieces := []piece{{kst, seg.Kind.String()}, {style{}, string(v.field)}}
	if seg.Analysis != 0 {
		pieces = append(pieces, piece{s.warn, " (" + seg.Analysis.String() + ")"})
	}
	if e.Late {
		pieces = append(pieces, piece{s.warn, " (late)"})
	}
	label.addFitted(pieces, budget)
	if seg.Len > 0 {
		label.addPreview(s, seg.Preview(), seg.Len, budget-label.n)
	}

	v.line.add(bar, "│")
	if seg.FromClient {
		v.line.add(kst, "────")
	} else {
		v.line.add(kst, "◀───")
	}
	v.line.pad(1)
	v.line.b = append(v.line.b, label.b...)
	v.line.n += label.n
	v.line.pad(1)
	fill := gap - ladderLead - 2 - label.n
	if seg.FromClient {
		v.line.add(kst, strings.Repeat("─", fill-1)+"▶")
	} else {
		v.line.add(kst, strings.Repeat("─", fill))
	}
	v.line.add(bar, "│")
}

// appendMarker puts a program's event on its lane: the client's at the
// left, "│ ○ dial to 127.0.0.1:4000     │", the server's at the right,
// "│     ● connection from 127.0.0.1:53782 │".
func (v *LadderView) appendMarker(gap int, e *Event) {
	s := v.styles
	l := e.lane()
	st, glyph := l.style(s), l.glyph()
	onClientLane := e.Side() == SideClient
	text := &v.label
	text.reset()
	budget := gap - 2
	pieces := []piece{{st, glyph + markerKind(e)}}
	if sum := l.short(e.PayloadLen()); sum != "" {
		pieces = append(pieces, piece{style{}, " " + sum})
	}
	if e.Late {
		pieces = append(pieces, piece{s.warn, " (late)"})
	}
	text.addFitted(pieces, budget)
	if p := e.Payload(); len(p) > 0 {
		text.addPreview(s, p, e.PayloadLen(), budget-text.n)
	}

	v.line.add(s.dim, "│")
	if onClientLane {
		v.line.pad(1)
		v.line.b = append(v.line.b, text.b...)
		v.line.n += text.n
		v.line.pad(gap - 1 - text.n)
	} else {
		v.line.pad(gap - 1 - text.n)
		v.line.b = append(v.line.b, text.b...)
		v.line.n += text.n
		v.line.pad(1)
	}
	v.line.add(s.dim, "│")
}

// ladderEnds names the client's and the server's addresses of the event's
// connection.
func ladderEnds(e *Event) (client, server string, ok bool) {
	local, remote := e.Endpoints()
	if !local.IsValid() || !remote.IsValid() {
		return "", "", false
	}
	if e.Side() == SideServer {
		return remote.String(), local.String(), true
	}
	return local.String(), remote.String(), true
}

// streamLabel is "#0" for connection 0, "" when the connection is unknown.
func streamLabel(stream int64) string {
	if stream < 0 {
		return ""
	}
	return "#" + strconv.FormatInt(stream, 10)
}

// piece is a run of text in one style.
type piece struct {
	st   style
	text string
}

// ladderLine is a line being built and how many cells it fills.
type ladderLine struct {
	b []byte
	n int
}

func (l *ladderLine) reset() { l.b, l.n = l.b[:0], 0 }

func (l *ladderLine) add(st style, text string) {
	l.b = st.append(l.b, text)
	l.n += cells(text)
}

func (l *ladderLine) pad(n int) {
	for ; n > 0; n-- {
		l.b = append(l.b, ' ')
		l.n++
	}
}

// addPadded writes text and pads it to width cells.
func (l *ladderLine) addPadded(st style, text string, width int) {
	l.add(st, text)
	l.pad(width - cells(text))
}

// addFitted writes pieces within budget cells: the piece that does not fit
// is cut and ends with "…", and the ones after it are left out.
func (l *ladderLine) addFitted(pieces []piece, budget int) {
	for _, p := range pieces {
		room := budget - l.n
		if w := cells(p.text); w <= room {
			l.add(p.st, p.text)
			continue
		}
		l.add(p.st, fitCells(p.text, room))
		return
	}
}

// addPreview writes " " and as much of the escaped payload as fits in room
// cells (AppendEscaped counts what it leaves out), or nothing when fewer
// than a few bytes would fit.
func (l *ladderLine) addPreview(s *Styles, payload []byte, total, room int) {
	room-- // the space before it
	n := min(len(payload), previewBytes)
	var plain []byte
	for ; n > 0; n-- {
		plain = AppendEscaped(plain[:0], plainStyles, payload, n, total)
		if cells(string(plain)) <= room {
			break
		}
	}
	if n == 0 || (n < ladderPreviewAt && n < len(payload)) {
		return
	}
	l.pad(1)
	l.b = AppendEscaped(l.b, s, payload, n, total)
	l.n += cells(string(plain))
}

// fitCells cuts text to at most max cells, ending it with "…" when cut.
func fitCells(text string, max int) string {
	if cells(text) <= max {
		return text
	}
	if max <= 0 {
		return ""
	}
	n := 0
	for i, r := range text {
		if n+runeCells(r) > max-1 {
			return text[:i] + "…"
		}
		n += runeCells(r)
	}
	return text
}

// cells is how many terminal cells text takes, counting East Asian wide
// characters and emoji as two. It errs on the wide side (a combining mark
// counts as one), which only leaves a line a little short.
func cells(text string) int {
	n := 0
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		n += runeCells(r)
		i += size
	}
	return n
}

func runeCells(r rune) int {
	switch {
	case r < 0x1100:
		return 1
	case r <= 0x115f, // Hangul Jamo
		r == 0x2329 || r == 0x232a,
		r >= 0x2e80 && r <= 0xa4cf && r != 0x303f, // CJK ... Yi
		r >= 0xac00 && r <= 0xd7a3,                // Hangul syllables
		r >= 0xf900 && r <= 0xfaff,                // CJK compatibility ideographs
		r >= 0xfe10 && r <= 0xfe19,                // vertical forms
		r >= 0xfe30 && r <= 0xfe6f,                // CJK compatibility forms
		r >= 0xff00 && r <= 0xff60,                // fullwidth forms
		r >= 0xffe0 && r <= 0xffe6,
		r >= 0x1f000 && r <= 0x1faff, // emoji and pictographs
		r >= 0x20000 && r <= 0x3fffd: // CJK extensions
		return 2
	}
	return 1
}
