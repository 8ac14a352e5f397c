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
	kind    [capture.KindRST + 1]style
	time    style // the relative time column
	source  style // the "wire" source column
	dim     style // explanations and secondary numbers
	warn    style // analysis remarks: retransmission, zero window...
	payload style // escaped payload previews
	escape  style // escape sequences inside a preview (\x1b, \n)
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
	s.time = from(color.Faint)
	s.source = from(color.FgHiBlack)
	s.dim = from(color.Faint)
	s.warn = from(color.FgRed)
	s.payload = from(color.FgGreen)
	s.escape = from(color.FgHiMagenta)
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
