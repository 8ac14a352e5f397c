package timeline

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendEscaped(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		max     int
		total   int
		want    string
	}{
		{"text", "hello", 40, 5, `"hello"`},
		{"newline", "hello\n", 40, 6, `"hello\n"`},
		{"crlf and tab", "GET / HTTP/1.1\r\n\tx", 40, 18, `"GET / HTTP/1.1\r\n\tx"`},
		{"quotes", `say "hi" \o/`, 40, 12, `"say \"hi\" \\o/"`},
		{"escape sequence", "\x1b[2J\x1b]0;pwned\x07", 40, 13, `"\x1b[2J\x1b]0;pwned\x07"`},
		{"nul and del", "\x00\x7f", 40, 2, `"\x00\x7f"`},
		{"utf-8 kept", "héllo wörld ✓", 40, 16, `"héllo wörld ✓"`},
		{"invalid utf-8", "\xff\xfe ok", 40, 5, `"\xff\xfe ok"`},
		{"C1 control", "a\u009bb", 40, 4, `"a\u009bb"`},
		{"bidi override", "abc\u202edef", 40, 9, `"abc\u202edef"`},
		{"cut with count", "0123456789", 4, 10, `"0123"…+6 bytes`},
		{"preview shorter than segment", "abc", 40, 1000, `"abc"…+997 bytes`},
		{"empty", "", 40, 0, `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendEscaped(nil, NewStyles(false), []byte(tt.payload), tt.max, tt.total))
			if got != tt.want {
				t.Errorf("AppendEscaped(%q) = %s, want %s", tt.payload, got, tt.want)
			}
		})
	}
}

// FuzzAppendEscaped: whatever a peer sends, the escaped form is valid UTF-8
// with no control byte, so it can't move the cursor, set the title or clear
// the screen; with color on, the only ESC bytes are the styles' own.
func FuzzAppendEscaped(f *testing.F) {
	for _, seed := range []string{"hello\n", "\x1b[2J", "\xff\xfe", "a\u202eb", "\u009b31m", ""} {
		f.Add([]byte(seed))
	}
	colored := NewStyles(true)
	f.Fuzz(func(t *testing.T, payload []byte) {
		out := AppendEscaped(nil, NewStyles(false), payload, previewBytes, len(payload))
		if !utf8.Valid(out) {
			t.Fatalf("not valid UTF-8: %q", out)
		}
		for _, r := range string(out) {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("control character %U in %q", r, out)
			}
		}
		withColor := string(AppendEscaped(nil, colored, payload, previewBytes, len(payload)))
		for _, st := range []style{colored.payload, colored.escape, colored.dim} {
			withColor = strings.ReplaceAll(withColor, st.on, "")
			withColor = strings.ReplaceAll(withColor, st.off, "")
		}
		// Rune by rune: a 0x9b byte inside a valid UTF-8 sequence (U+079B
		// is DE 9B) is no C1 control; only a control character is.
		if !utf8.ValidString(withColor) {
			t.Fatalf("colored output is not valid UTF-8: %q", withColor)
		}
		for _, r := range withColor {
			if r == 0x1b || r == 0x07 || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("raw control character %U besides the styles: %q", r, withColor)
			}
		}
	})
}
