package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const captures = "../../pkg/capture/testdata"

// run runs the command line as main would, with its own streams.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestReplayGolden compares the log view of every recorded capture with its
// golden transcript (go test ./internal/cli -update rewrites them).
func TestReplayGolden(t *testing.T) {
	files, _ := filepath.Glob(captures + "/*.pcap*")
	if len(files) == 0 {
		t.Fatal("no captures found")
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, "replay", "--no-color", file)
			if strings.HasPrefix(name, "snap") {
				// Captured with a snap length that cuts headers: shown, and said once.
				if !strings.Contains(errOut, "the snap length cut the TCP") {
					t.Errorf("stderr %q does not say the snap length cut headers", errOut)
				}
				errOut = ""
			}
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			golden := filepath.Join("testdata", "replay", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/cli -update to create it)", err)
			}
			if out != string(want) {
				t.Errorf("replay output differs from %s:\n--- got\n%s--- want\n%s", golden, out, want)
			}
		})
	}
}

// TestReplayJSON checks the JSON shape: one object per segment, the fields
// the issue names, and a stream that tools can consume.
func TestReplayJSON(t *testing.T) {
	code, out, errOut := run(t, "replay", "--json", captures+"/nc-hello.pcap")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 10", len(lines))
	}
	var kinds, flagsSeen []string
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		for _, field := range []string{"time", "source", "kind", "flags", "src", "dst", "seq", "ack", "len", "win", "note"} {
			if _, ok := m[field]; !ok {
				t.Errorf("line lacks %q: %s", field, line)
			}
		}
		if m["source"] != "wire" {
			t.Errorf("source = %v, want wire", m["source"])
		}
		kinds = append(kinds, m["kind"].(string))
		flagsSeen = append(flagsSeen, m["flags"].(string))
	}
	if got, want := strings.Join(kinds, " "), "SYN SYN+ACK ACK DATA ACK DATA ACK FIN FIN ACK"; got != want {
		t.Errorf("kinds %q, want %q", got, want)
	}
	if got, want := strings.Join(flagsSeen, " "), "S S. . P. . P. . F. F. ."; got != want {
		t.Errorf("flags %q, want %q", got, want)
	}
	var first JSONLine
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Time != "2026-11-27T17:21:01.273919Z" || first.Src != "127.0.0.1:41304" || first.Dst != "127.0.0.1:4000" {
		t.Errorf("first line: %+v", first)
	}
	_, out6, _ := run(t, "replay", "--json", captures+"/ipv6.pcap")
	if !strings.Contains(out6, `"src":"[::1]:`) {
		t.Errorf("IPv6 endpoints are not bracketed: %s", strings.SplitN(out6, "\n", 2)[0])
	}
}

// JSONLine is the subset of a line TestReplayJSON reads back.
type JSONLine struct {
	Time, Src, Dst string
}

// TestBadInput: every mistake gets one clear line on stderr and the right
// exit code, never a panic or stack trace.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	whole, err := os.ReadFile(captures + "/http-curl.pcap")
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.pcap")
	os.WriteFile(truncated, whole[:500], 0o644)
	headerOnly := filepath.Join(dir, "cut-header.pcap")
	os.WriteFile(headerOnly, whole[:10], 0o644)
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("this is not a capture\n"), 0o644)

	tests := []struct {
		name      string
		args      []string
		code      int
		stderrHas string
		stdoutHas string // for truncated files: what was whole is shown
	}{
		{"missing file", []string{"replay", filepath.Join(dir, "nope.pcap")}, 1, "nope.pcap: no such file", ""},
		{"directory", []string{"replay", dir}, 1, "is a directory", ""},
		{"empty file", []string{"replay", empty}, 1, "is empty", ""},
		{"not a capture", []string{"replay", text}, 1, "not a pcap or pcapng capture file", ""},
		{"truncated", []string{"replay", "--no-color", truncated}, 1, "truncated: frame 5 is cut short", "handshake 3/3"},
		{"truncated header", []string{"replay", headerOnly}, 1, "truncated", ""},
		{"no file", []string{"replay"}, 2, "replay needs a capture file", ""},
		{"two files", []string{"replay", "a", "b"}, 2, "one capture file", ""},
		{"unknown flag", []string{"replay", "--frob", "x"}, 2, "flag provided but not defined: -frob", ""},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`, ""},
		{"lesson typo", []string{"lesson99x"}, 2, `"99x" is not a lesson number`, ""},
		{"port out of range", []string{"watch", "--port", "70000"}, 2, "--port 70000 is out of range", ""},
		{"port and filter", []string{"watch", "--port", "80", "--filter", "tcp"}, 2, "can't be used together", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if !strings.Contains(errOut, tt.stderrHas) {
				t.Errorf("stderr %q, want it to say %q", errOut, tt.stderrHas)
			}
			if tt.code == 1 && strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", errOut)
			}
			if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
				t.Errorf("stack trace on stderr: %q", errOut)
			}
			if !strings.Contains(out, tt.stdoutHas) {
				t.Errorf("stdout %q, want it to hold %q", out, tt.stdoutHas)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := run(t, "help")
	if code != 0 || !strings.Contains(out, "replay") || !strings.Contains(out, "watch") {
		t.Errorf("help: exit %d, %q", code, out)
	}
	code, out, _ = run(t, "replay", "-h")
	if code != 0 || !strings.Contains(out, "Usage: playground replay FILE") || !strings.Contains(out, "-json") {
		t.Errorf("replay -h: exit %d, %q", code, out)
	}
}
