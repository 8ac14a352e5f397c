package timeline

import (
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendEscaped appends payload as a double-quoted string that is safe on a
// terminal: printable Unicode stays as it is; quotes and backslashes,
// control bytes (ESC among them), format characters such as bidi overrides,
// and invalid UTF-8 become Go-style escapes (\n, \x1b, \u202e). It shows at
// most maxBytes of payload; total is the payload's full length, and when
// more was sent than shown, a count of the rest follows the closing quote.
//
// Nothing that a peer sends can reach the terminal raw through here: this is
// the only way payload bytes are rendered.
func AppendEscaped(dst []byte, s *Styles, payload []byte, maxBytes, total int) []byte {
	shown := payload
	if len(shown) > maxBytes {
		shown = shown[:maxBytes]
	}
	dst = append(dst, s.payload.on...)
	dst = append(dst, '"')
	for i := 0; i < len(shown); {
		r, size := utf8.DecodeRune(shown[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			dst = appendEscape(dst, s, func(b []byte) []byte {
				return append(b, '\\', 'x', hexDigits[shown[i]>>4], hexDigits[shown[i]&0xf])
			})
			size = 1
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\n':
			dst = appendEscape(dst, s, func(b []byte) []byte { return append(b, '\\', 'n') })
		case r == '\r':
			dst = appendEscape(dst, s, func(b []byte) []byte { return append(b, '\\', 'r') })
		case r == '\t':
			dst = appendEscape(dst, s, func(b []byte) []byte { return append(b, '\\', 't') })
		case r < utf8.RuneSelf && (r < 0x20 || r == 0x7f):
			dst = appendEscape(dst, s, func(b []byte) []byte {
				return append(b, '\\', 'x', hexDigits[r>>4], hexDigits[r&0xf])
			})
		case strconv.IsPrint(r):
			dst = append(dst, shown[i:i+size]...)
		default: // C1 controls, format characters, unassigned code points
			dst = appendEscape(dst, s, func(b []byte) []byte {
				b = append(b, '\\', 'u')
				if r > 0xffff {
					b[len(b)-1] = 'U'
					return appendHex(b, uint32(r), 8)
				}
				return appendHex(b, uint32(r), 4)
			})
		}
		i += size
	}
	dst = append(dst, '"')
	dst = append(dst, s.payload.off...)
	if rest := total - len(shown); rest > 0 {
		dst = append(dst, s.dim.on...)
		dst = append(dst, "…+"...)
		dst = strconv.AppendInt(dst, int64(rest), 10)
		dst = append(dst, " bytes"...)
		dst = append(dst, s.dim.off...)
	}
	return dst
}

// appendEscape writes one escape sequence in the escape style, then returns
// to the payload style.
func appendEscape(dst []byte, s *Styles, write func([]byte) []byte) []byte {
	dst = append(dst, s.escape.on...)
	dst = write(dst)
	dst = append(dst, s.escape.off...)
	return append(dst, s.payload.on...)
}

func appendHex(dst []byte, v uint32, digits int) []byte {
	for shift := (digits - 1) * 4; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(v>>uint(shift))&0xf])
	}
	return dst
}
