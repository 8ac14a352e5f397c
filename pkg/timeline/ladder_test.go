package timeline

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/client"
	"github.com/tcp-playground/playground/pkg/server"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata from the current output")

// wireEvents replays a capture of pkg/capture/testdata as timeline events.
func wireEvents(t testing.TB, name string) []Event {
	t.Helper()
	path := filepath.Join("..", "capture", "testdata", name)
	r, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	for seg, err := range r.Segments(context.Background()) {
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		events = append(events, WireEvent(seg))
	}
	return events
}

func renderAll(t testing.TB, r Renderer, events []Event) {
	t.Helper()
	for _, e := range events {
		if err := r.Render(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
}

func renderLadder(t testing.TB, styles *Styles, width int, events []Event) string {
	t.Helper()
	var buf bytes.Buffer
	renderAll(t, NewLadderView(&buf, styles, width, time.Time{}), events)
	return buf.String()
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// checkWidth fails when a line of plain output is wider than width runes.
func checkWidth(t *testing.T, out string, width int) {
	t.Helper()
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if n := utf8.RuneCountInString(line); n > width {
			t.Errorf("line %d is %d runes wide, more than %d:\n%s", i+1, n, width, line)
		}
		if n := cells(line); n > width {
			t.Errorf("line %d takes %d cells, more than %d:\n%s", i+1, n, width, line)
		}
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// eventLine is the start of an event's line: its time.
var eventLine = regexp.MustCompile(`(?m)^#?\d*\s+[+-]\d+\.\d+ m?s  `)

func TestLadderGolden(t *testing.T) {
	events := wireEvents(t, "nc-hello.pcap")
	for _, width := range []int{80, 140} {
		name := "ladder-" + strconv.Itoa(width) + ".golden"
		t.Run(name, func(t *testing.T) {
			out := renderLadder(t, NewStyles(false), width, events)
			checkGolden(t, name, out)
			checkWidth(t, out, width)
			if n := strings.Count(out, "▶│") + strings.Count(out, "│◀"); n != len(events) {
				t.Errorf("%d arrows drawn for %d segments", n, len(events))
			}
			// Every segment's note is there whole, at any width.
			flat := strings.Join(strings.Fields(strings.NewReplacer("│", " ").Replace(out)), " ")
			for _, e := range events {
				if note := SegmentNote(&e.Segment); !strings.Contains(flat, note) {
					t.Errorf("the note %q is cut or missing", note)
				}
			}
			// Color changes nothing but the escape sequences around text.
			colored := renderLadder(t, NewStyles(true), width, events)
			if colored == out {
				t.Error("colored output has no color")
			}
			if plain := ansi.ReplaceAllString(colored, ""); plain != out {
				t.Errorf("colored output without its escapes differs from the plain output:\n%s", plain)
			}
		})
	}
}

// programEvents are the server's and the client's events of the nc-hello
// conversation, placed among its segments as the real programs would see
// them, plus a payload that tries to take over the terminal.
func programEvents(wire []Event) []Event {
	srv := netip.MustParseAddrPort("127.0.0.1:4000")
	cli := netip.MustParseAddrPort("127.0.0.1:41304")
	at := func(i int, d time.Duration) time.Time { return wire[i].Time.Add(d) }
	return []Event{
		ServerEvent(server.Event{Time: at(0, -time.Millisecond), Kind: server.Listening, Local: srv}),
		ClientEvent(client.Event{Time: at(0, -time.Microsecond), Kind: client.Dialing, Remote: srv}),
		ClientEvent(client.Event{Time: at(1, 2*time.Microsecond), Kind: client.Connected, Local: cli, Remote: srv}),
		ServerEvent(server.Event{Time: at(2, 5*time.Microsecond), Kind: server.Connection, Conn: 1, Local: srv, Remote: cli,
			NodeRemoteAddress: "127.0.0.1", Family: "IPv4"}),
		ClientEvent(client.Event{Time: at(3, -time.Microsecond), Kind: client.Write, Local: cli, Remote: srv, Data: []byte("hello\n")}),
		ServerEvent(server.Event{Time: at(4, time.Microsecond), Kind: server.Data, Conn: 1, Local: srv, Remote: cli, Data: []byte("hello\n")}),
		ServerEvent(server.Event{Time: at(5, -time.Microsecond), Kind: server.Write, Conn: 1, Local: srv, Remote: cli,
			Data: []byte("Hello from server\x1b]0;pwned\x07\x1b[2J <script>" + strings.Repeat("x", 100))}),
		ClientEvent(client.Event{Time: at(6, time.Microsecond), Kind: client.Read, Local: cli, Remote: srv, Data: []byte("Hello from server")}),
		ClientEvent(client.Event{Time: at(7, -time.Microsecond), Kind: client.Close, Local: cli, Remote: srv, Detail: "closed by client"}),
		ServerEvent(server.Event{Time: at(8, -2*time.Microsecond), Kind: server.Close, Conn: 1, Local: srv, Remote: cli,
			Detail: server.DetailPeerFIN}),
		ServerEvent(server.Event{Time: at(9, time.Millisecond), Kind: server.Error, Detail: "accept", Err: errors.New("use of closed network connection")}),
	}
}

// mixed merges wire and program events by time and links them, as Live does.
func mixed(t testing.TB, wire, programs []Event) []Event {
	t.Helper()
	all := append(append([]Event(nil), wire...), programs...)
	for i := 1; i < len(all); i++ { // insertion sort: stable, and small
		for j := i; j > 0 && all[j].Time.Before(all[j-1].Time); j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	linker := NewLinker()
	for i := range all {
		linker.Link(&all[i])
	}
	return all
}

func TestLadderProgramEvents(t *testing.T) {
	wire := wireEvents(t, "nc-hello.pcap")
	events := mixed(t, wire, programEvents(wire))
	// A second connection in the middle gets its own header and label.
	second := wire[0]
	second.Stream, second.Segment.Stream = 1, 1
	second.Segment.Src = netip.MustParseAddrPort("127.0.0.1:41306")
	second.Time = wire[4].Time.Add(time.Microsecond)
	late := wire[3]
	late.Late = true
	late.Segment.Analysis = capture.Retransmission | capture.WindowFull
	events = append(events[:8], append([]Event{second, late}, events[8:]...)...)

	for _, width := range []int{46, 60, 80, 100, 120, 140, 200} {
		out := renderLadder(t, NewStyles(false), width, events)
		checkWidth(t, out, width)
		// One line per event (a note may continue on lines of its own).
		if n := len(eventLine.FindAllString(out, -1)); n != len(events) {
			t.Errorf("width %d: %d event lines for %d events:\n%s", width, n, len(events), out)
		}
		if strings.ContainsRune(out, 0x1b) || strings.ContainsRune(out, 0x07) {
			t.Errorf("width %d: a control byte of the payload reached the output:\n%q", width, out)
		}
		colored := renderLadder(t, NewStyles(true), width, events)
		if plain := ansi.ReplaceAllString(colored, ""); plain != out {
			t.Errorf("width %d: colored output without its escapes differs:\n%s", width, plain)
		}
		if width == 80 {
			checkGolden(t, "ladder-programs-80.golden", out)
		}
	}

	out := renderLadder(t, NewStyles(false), 200, events)
	for _, want := range []string{
		"client 127.0.0.1:41304", "server 127.0.0.1:4000", // the header
		"client 127.0.0.1:41306",   // the second connection's
		"#1 ",                      // and its label
		"○ dial to 127.0.0.1:4000", // client markers on the left lane
		"● connection from 127.0.0.1:41304 │",          // server markers against the right lane
		"● data 6 bytes \"hello\\n\"",                  // escaped payload
		`\x1b]0;pwned\x07`,                             // hostile payload, escaped
		"(retransmission, window full) (late)",         // remarks
		"──── DATA seq=1:7 ack=1 len=6 \"hello\\n\" ─", // an arrow from the client
		"│◀─── DATA seq=1:18 ack=7 len=17 \"Hello",     // an arrow from the server
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Program events before any connection have no label.
	if first := strings.SplitN(out, "\n", 2)[0]; !strings.HasPrefix(first, "    ") || !strings.Contains(first, "● listening") {
		t.Errorf("first line = %q, want the unlabelled listening marker", first)
	}
}

func TestLadderWideCharacters(t *testing.T) {
	wire := wireEvents(t, "nc-hello.pcap")
	srv := netip.MustParseAddrPort("127.0.0.1:4000")
	events := []Event{wire[0], ServerEvent(server.Event{Time: wire[0].Time, Kind: server.Data, Local: srv,
		Data: []byte(strings.Repeat("你好👋", 30))})}
	for _, width := range []int{60, 80} {
		out := renderLadder(t, NewStyles(false), width, events)
		checkWidth(t, out, width)
		if !strings.Contains(out, "你好") {
			t.Errorf("width %d: no preview:\n%s", width, out)
		}
	}
}

func TestFitCells(t *testing.T) {
	tests := []struct {
		text string
		max  int
		want string
	}{
		{"SYN seq=0", 20, "SYN seq=0"},
		{"SYN seq=0", 9, "SYN seq=0"},
		{"SYN seq=0", 8, "SYN seq…"},
		{"SYN", 1, "…"},
		{"SYN", 0, ""},
		{"你好你好", 5, "你好…"},
		{"你好你好", 4, "你…"},
	}
	for _, tt := range tests {
		if got := fitCells(tt.text, tt.max); got != tt.want {
			t.Errorf("fitCells(%q, %d) = %q, want %q", tt.text, tt.max, got, tt.want)
		}
	}
}

func TestLadderWriteError(t *testing.T) {
	v := NewLadderView(failWriter{}, nil, 80, time.Time{})
	for _, e := range wireEvents(t, "nc-hello.pcap") {
		if err := v.Render(e); err != nil {
			t.Fatalf("Render buffers, but failed: %v", err)
		}
	}
	if err := v.Flush(); err == nil {
		t.Error("Flush to a failing writer returned nil")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// TestLadderLongRun: past 100 s the time column grows, and lines still fit.
func TestLadderLongRun(t *testing.T) {
	wire := wireEvents(t, "nc-hello.pcap")
	for i := range wire {
		wire[i].Time = wire[i].Time.Add(time.Duration(i*i*i) * 100 * time.Second)
	}
	out := renderLadder(t, NewStyles(false), 80, wire)
	checkWidth(t, out, 80)
	if !strings.Contains(out, "+72900.") {
		t.Errorf("no long time in:\n%s", out)
	}
}
