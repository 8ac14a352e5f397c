package timeline

import (
	"io"
	"os"
	"strings"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"

	"github.com/tcp-playground/playground/pkg/capture"
)

// This file is the one place that decides colors. Everything else asks a
// Styles for a style by meaning (a wire kind, the server, a warning), so the
// palette can change here alone, and plain output is the same code path with
// empty styles.

// style is a pair of terminal escape strings around styled text; both are
// empty when color is off.
type style struct{ on, off string }

func (s style) append(dst []byte, text string) []byte {
	dst = append(dst, s.on...)
	dst = append(dst, text...)
	return append(dst, s.off...)
}

// Styles holds the styles a renderer uses.
type Styles struct {
	enabled bool
	kind    [capture.KindCut + 1]style
	time    style // the relative time column
	source  style // the "wire" source column
	dim     style // explanations and secondary numbers
	warn    style // analysis remarks: retransmission, zero window...
	payload style // escaped payload previews
	escape  style // escape sequences inside a preview (\x1b, \n)
	server  style // the server's own events
	client  style // the client's own events
	kernel  style // the kernel's sockets: states and queues
	process style // any program's socket calls
	good    style // a check that passed
	bad     style // a check that failed
	heading style // lesson and step titles
	code    style // code listings (plain: code reads best uncolored)
}

// NewStyles returns colored styles when enabled, else empty ones.
func NewStyles(enabled bool) *Styles {
	s := &Styles{enabled: enabled}
	if !enabled {
		return s
	}
	s.kind[capture.KindSYN] = from(color.FgCyan, color.Bold)
	s.kind[capture.KindSYNACK] = from(color.FgBlue, color.Bold)
	s.kind[capture.KindACK] = from(color.FgWhite)
	s.kind[capture.KindData] = from(color.FgYellow, color.Bold)
	s.kind[capture.KindFIN] = from(color.FgMagenta, color.Bold)
	s.kind[capture.KindRST] = from(color.FgRed, color.Bold)
	s.kind[capture.KindCut] = from(color.Faint) // only its addresses are known
	s.time = from(color.Faint)
	s.source = from(color.FgHiBlack)
	s.dim = from(color.Faint)
	s.warn = from(color.FgRed)
	s.payload = from(color.FgGreen)
	s.escape = from(color.FgHiMagenta)
	s.server = from(color.FgGreen, color.Bold)
	s.client = from(color.FgHiBlue, color.Bold)
	s.kernel = from(color.FgHiYellow)
	s.process = from(color.FgHiCyan)
	s.good = from(color.FgGreen, color.Bold)
	s.bad = from(color.FgRed, color.Bold)
	s.heading = from(color.Bold, color.Underline)
	return s
}

// Enabled reports whether these styles emit color.
func (s *Styles) Enabled() bool { return s.enabled }

// from asks fatih/color for the escape sequences of attrs once, so that
// rendering a line is appending strings rather than formatting.
func from(attrs ...color.Attribute) style {
	c := color.New(attrs...)
	c.EnableColor()
	const marker = "\x00"
	on, off, _ := strings.Cut(c.Sprint(marker), marker)
	return style{on: on, off: off}
}

// ColorFor decides whether output to w gets color: never with --no-color,
// NO_COLOR set (https://no-color.org) or TERM=dumb; else only when w is a
// terminal.
func ColorFor(w io.Writer, noColorFlag bool) bool {
	if noColorFlag || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// Role names a style by meaning, for text outside the timeline's own lines
// (lesson narration, checks, prompts).
type Role uint8

const (
	RoleHeading Role = iota
	RoleCode
	RoleGood
	RoleBad
	RoleDim
	RoleWarn
	RoleServer
	RoleClient
	RoleInline // `code` inside prose
)

// Paint returns text in the role's style (unchanged when color is off).
func (s *Styles) Paint(r Role, text string) string {
	var st style
	switch r {
	case RoleHeading:
		st = s.heading
	case RoleCode:
		st = s.code
	case RoleGood:
		st = s.good
	case RoleBad:
		st = s.bad
	case RoleDim:
		st = s.dim
	case RoleWarn:
		st = s.warn
	case RoleServer:
		st = s.server
	case RoleClient:
		st = s.client
	case RoleInline:
		st = s.payload
	}
	return st.on + text + st.off
}

// The HTML view's colors: the terminal's hues as CSS colors that read on a
// white page (the terminal's white ACK becomes gray, its yellow DATA a
// darker amber).
var webKindColor = [capture.KindRST + 1]string{
	capture.KindACK:    "#6b7280", // white on a terminal
	capture.KindSYN:    "#0e7490", // cyan
	capture.KindSYNACK: "#1d4ed8", // blue
	capture.KindData:   "#b45309", // yellow
	capture.KindFIN:    "#a21caf", // magenta
	capture.KindRST:    "#dc2626", // red
}

// CSS colors of the HTML view's roles, the terminal's server, client, warn,
// dim and payload styles.
const (
	webServerColor  = "#15803d" // green
	webClientColor  = "#4338ca" // bright blue
	webWarnColor    = "#dc2626" // red
	webDimColor     = "#6b7280" // faint
	webPayloadColor = "#166534" // green
)
