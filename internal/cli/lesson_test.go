package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/capture/live"
)

// freePort finds a loopback port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// skipUnlessCapture skips when this process may not capture; CI runs as
// root and fails on skips.
func skipUnlessCapture(t *testing.T) {
	t.Helper()
	r, err := live.Open(live.Options{Filter: "tcp port 1"})
	if err != nil {
		t.Skipf("live capture is not possible here (run as root): %v", err)
	}
	r.Close()
}

// jsonEvent is what the tests read back from --json lines.
type jsonEvent struct {
	Time      time.Time `json:"time"`
	Source    string    `json:"source"`
	Kind      string    `json:"kind"`
	Flags     string    `json:"flags"`
	From      string    `json:"from"`
	Src       string    `json:"src"`
	Dst       string    `json:"dst"`
	Seq       uint32    `json:"seq"`
	Ack       uint32    `json:"ack"`
	Len       int       `json:"len"`
	Step      string    `json:"step"`
	Expect    string    `json:"expect"`
	OK        bool      `json:"ok"`
	Late      bool      `json:"late"`
	Remote    string    `json:"remote"`
	Local     string    `json:"local"`
	Preview   string    `json:"preview"`
	Side      string    `json:"side"`
	Old       string    `json:"old"`
	New       string    `json:"new"`
	Checkable *bool     `json:"checkable"`
	Frame     uint64    `json:"frame"`
	Analysis  []string  `json:"analysis"`
	PID       uint32    `json:"pid"`
	Comm      string    `json:"comm"`
}

func parseJSONLines(t *testing.T, out string) []jsonEvent {
	t.Helper()
	var events []jsonEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e jsonEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

// TestLesson1AutoJSON runs lesson 1 on the real wire and checks the merged
// timeline: the handshake before the server's connection event, one data
// segment per client write with its length, the reply, FIN both ways, and
// time never going backwards.
func TestLesson1AutoJSON(t *testing.T) {
	skipUnlessCapture(t)
	port := freePort(t)
	code, out, errOut := run(t, "lesson1", "--auto", "--json", "--port", strconv.Itoa(port))
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	events := parseJSONLines(t, out)

	var timeline []jsonEvent // wire, server and client events, without the checks
	checks, passed := 0, 0
	for _, e := range events {
		if e.Source == "lesson" {
			checks++
			if e.OK {
				passed++
			}
			continue
		}
		timeline = append(timeline, e)
	}
	if checks == 0 || passed != checks {
		t.Errorf("%d of %d checks passed", passed, checks)
	}
	// What the timeline guarantees: events in time order, except one that
	// arrived after its reorder window (a busy machine), which says so.
	var latest time.Time
	for i, e := range timeline {
		if e.Time.Before(latest) && !e.Late {
			t.Errorf("event %d (%s %s %v) is out of time order and not marked late", i, e.Source, e.Kind, e.Time)
		}
		if e.Time.After(latest) {
			latest = e.Time
		}
	}

	// The handshake, then the server's code hears of it.
	find := func(from int, match func(e jsonEvent) bool) int {
		for i := from; i < len(timeline); i++ {
			if match(timeline[i]) {
				return i
			}
		}
		return -1
	}
	wire := func(kind, from string) func(jsonEvent) bool {
		return func(e jsonEvent) bool { return e.Source == "wire" && e.Kind == kind && (from == "" || e.From == from) }
	}
	prog := func(source, kind string) func(jsonEvent) bool {
		return func(e jsonEvent) bool { return e.Source == source && e.Kind == kind }
	}
	// In time order, the handshake, then the server's code hears of it.
	at := 0
	var previous time.Time
	for _, step := range []struct {
		name  string
		match func(jsonEvent) bool
	}{
		{"SYN", wire("SYN", "client")},
		{"SYN+ACK", wire("SYN+ACK", "server")},
		{"ACK", func(e jsonEvent) bool { return wire("ACK", "client")(e) && e.Step == "handshake 3/3" }},
		{"server connection", prog("server", "connection")},
		{"client's FIN", wire("FIN", "client")},
		{"server's FIN", wire("FIN", "server")},
		{"last ACK", func(e jsonEvent) bool { return wire("ACK", "client")(e) && e.Step == "teardown 4/4" }},
	} {
		i := find(at, step.match)
		if i < 0 {
			i = find(0, step.match) // shown early or late: its time decides
		}
		if i < 0 {
			t.Fatalf("%s not found; timeline:\n%s", step.name, out)
		}
		if timeline[i].Time.Before(previous) {
			t.Errorf("%s at %v comes before the step it follows (%v)", step.name, timeline[i].Time, previous)
		}
		previous = timeline[i].Time
		at = i + 1
	}

	// One DATA segment per client write, with that write's length.
	var writes, clientData []int
	for _, e := range timeline {
		switch {
		case e.Source == "client" && e.Kind == "write":
			writes = append(writes, e.Len)
		case e.Source == "wire" && e.Kind == "DATA" && e.From == "client":
			clientData = append(clientData, e.Len)
		}
	}
	if len(writes) == 0 || fmtInts(writes) != fmtInts(clientData) {
		t.Errorf("client writes %v, client DATA segments %v: want one segment per write", writes, clientData)
	}
	// The reply: the server's write and the segment that carried it.
	reply := find(0, func(e jsonEvent) bool {
		return wire("DATA", "server")(e) && e.Len == len("Hello from server") && e.Ack == 6
	})
	if reply < 0 || find(0, func(e jsonEvent) bool { return prog("server", "write")(e) && e.Len == 17 }) < 0 {
		t.Errorf("the reply (a 17-byte server write and its DATA segment with ack=6) is missing:\n%s", out)
	}
}

func fmtInts(v []int) string {
	var b bytes.Buffer
	b.WriteString("[")
	for i, n := range v {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteString("]")
	return b.String()
}

// TestLessonBadInput: lesson mistakes are usage errors.
func TestLessonBadInput(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"lesson99"}, 2, "there is no lesson 99"},
		{[]string{"lesson", "x"}, 2, `"x" is not a lesson number`},
		{[]string{"lesson"}, 2, "which lesson?"},
		{[]string{"lesson1", "--port", "99999"}, 2, "--port 99999 is out of range"},
		{[]string{"lesson1", "--bogus"}, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		code, _, errOut := run(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
}

// TestLessonPortInUse: a port held by another program is one clear line.
func TestLessonPortInUse(t *testing.T) {
	skipUnlessCapture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	code, _, errOut := run(t, "lesson1", "--auto", "--port", strconv.Itoa(port))
	if code != 1 || !strings.Contains(errOut, "is taken by another program; choose another with --port") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestLesson1Golden runs lesson 1 and compares its transcript, without the
// live event lines (their order within a few microseconds varies from run to
// run; TestLesson1AutoJSON checks them), with a golden file: the narration,
// the Node.js and Go code side by side, and the checks.
func TestLesson1Golden(t *testing.T) {
	skipUnlessCapture(t)
	port := freePort(t)
	code, out, errOut := run(t, "lesson1", "--auto", "--no-color", "--port", strconv.Itoa(port))
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	var kept []string
	eventLine := regexp.MustCompile(`^\s*[+-][0-9]+\.[0-9]+ (ms|s)  `)
	for _, line := range strings.Split(out, "\n") {
		if eventLine.MatchString(line) {
			continue
		}
		kept = append(kept, strings.ReplaceAll(line, strconv.Itoa(port), "PORT"))
	}
	got := strings.Join(kept, "\n")
	golden := filepath.Join("testdata", "lesson1.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./internal/cli -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("lesson 1 transcript differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
	if n := strings.Count(out, "\n") - len(kept) + 1; n < 20 {
		t.Errorf("only %d event lines in the transcript", n)
	}
}

// TestProgressListNextReset: a finished lesson gets its ✓ in the list, next
// moves on, reset forgets.
func TestProgressListNextReset(t *testing.T) {
	skipUnlessCapture(t)
	run(t, "reset")
	_, out, _ := run(t)
	if !strings.Contains(out, " 1  Creating a TCP server  ← next") {
		t.Fatalf("fresh list:\n%s", out)
	}
	if code, _, errOut := run(t, "lesson", "1", "--auto", "--port", strconv.Itoa(freePort(t))); code != 0 {
		t.Fatalf("lesson 1: %s", errOut)
	}
	_, out, _ = run(t)
	if !strings.Contains(out, "✓  1  Creating a TCP server") || strings.Contains(out, "1  Creating a TCP server  ← next") {
		t.Errorf("after lesson 1:\n%s", out)
	}
	_, out, _ = run(t, "reset")
	if !strings.Contains(out, "Progress forgotten") {
		t.Errorf("reset: %q", out)
	}
	_, out, _ = run(t)
	if strings.Contains(out, "✓") {
		t.Errorf("after reset:\n%s", out)
	}
}

// TestEveryLessonAuto runs every lesson of the curriculum with --auto on the
// real wire: each must pass all its checks.
func TestEveryLessonAuto(t *testing.T) {
	skipUnlessCapture(t)
	all, _, _, err := loadLessons()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 10 {
		t.Errorf("%d lessons, want the 10 of the curriculum", len(all))
	}
	for _, l := range all {
		t.Run(fmt.Sprintf("lesson%d", l.Number), func(t *testing.T) {
			code, out, errOut := run(t, fmt.Sprintf("lesson%d", l.Number), "--auto", "--no-color", "--port", strconv.Itoa(freePort(t)))
			if code != 0 {
				t.Errorf("exit %d: %s\n%s", code, errOut, out)
			}
			if !strings.Contains(out, "checks passed on the real wire") {
				t.Errorf("no final verdict:\n%s", out)
			}
		})
	}
}
