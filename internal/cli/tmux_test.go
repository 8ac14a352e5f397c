package cli

import (
	"fmt"
	"github.com/tcp-playground/playground/pkg/lesson"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// tmuxWait bounds every wait for the screen; tmuxPoll is how often the
// screen is read meanwhile.
const (
	tmuxWait = 15 * time.Second
	tmuxPoll = 50 * time.Millisecond
)

// tmuxEscape matches the terminal escape sequences (colors, mostly) that
// capture-pane -e keeps.
var tmuxEscape = regexp.MustCompile("\x1b\\[[0-9;:?]*[ -/]*[@-~]")

// tmuxSession is a detached tmux session, on a tmux server of its own, whose
// only pane runs the program under test.
type tmuxSession struct {
	t      *testing.T
	socket string // tmux -L: the test's own server, away from the user's
	name   string
	status string // file where the pane's sh writes the program's exit status
}

// tmux runs one tmux command against the session's server.
func (s *tmuxSession) tmux(args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// raw is the screen and its scrollback, with the escape sequences.
func (s *tmuxSession) raw() string {
	out, err := s.tmux("capture-pane", "-p", "-e", "-J", "-S", "-2000", "-t", s.name)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// screen is the screen as text, without escape sequences.
func (s *tmuxSession) screen() string {
	return tmuxEscape.ReplaceAllString(s.raw(), "")
}

// tail is the last n non-blank lines of the screen, for failure messages.
func (s *tmuxSession) tail(n int) string {
	out, err := s.tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t", s.name)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// fatalf fails the test with the end of the screen.
func (s *tmuxSession) fatalf(format string, a ...any) {
	s.t.Helper()
	s.t.Fatalf("%s\n--- last 40 lines of the screen:\n%s", fmt.Sprintf(format, a...), s.tail(40))
}

// waitUntil polls the (unescaped) screen until cond holds, failing after
// tmuxWait.
func (s *tmuxSession) waitUntil(what string, cond func(screen string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(tmuxWait)
	for {
		screen := s.screen()
		if cond(screen) {
			return screen
		}
		if done, status := s.exited(); done && !cond(s.screen()) {
			s.fatalf("the program exited (status %s) while waiting for %s", status, what)
		}
		if time.Now().After(deadline) {
			s.fatalf("timed out after %v waiting for %s", tmuxWait, what)
		}
		time.Sleep(tmuxPoll)
	}
}

// waitCount waits until text is on the screen at least n times.
func (s *tmuxSession) waitCount(text string, n int) string {
	s.t.Helper()
	return s.waitUntil(fmt.Sprintf("%q to appear %d time(s)", text, n), func(screen string) bool {
		return strings.Count(screen, text) >= n
	})
}

// cursor is where the pane's cursor is, with the scrollback's length, so
// that it changes whenever the program prints anything.
func (s *tmuxSession) cursor() string {
	out, err := s.tmux("display-message", "-p", "-t", s.name, "#{cursor_x} #{cursor_y} #{history_size}")
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// press types a key at a prompt that is on the screen, and waits until the
// program took it: every prompt ends its line when it takes a key, so the
// cursor moves. The prompts forget keys typed in their first moments (so a
// key pressed while a step ran does not answer them); a key lost that way is
// typed again.
func (s *tmuxSession) press(key string) {
	s.t.Helper()
	before := s.cursor()
	deadline := time.Now().Add(tmuxWait)
	for time.Now().Before(deadline) {
		if _, err := s.tmux("send-keys", "-t", s.name, key); err != nil {
			s.t.Fatal(err)
		}
		retry := time.Now().Add(time.Second)
		for time.Now().Before(retry) {
			if s.cursor() != before {
				return
			}
			time.Sleep(tmuxPoll)
		}
	}
	s.fatalf("the program did not take the key %s within %v", key, tmuxWait)
}

// exited reports whether the program has ended, and its exit status. The
// pane runs the program under sh, which writes the status to a file:
// tmux's own #{pane_dead_status} is not reliable: tmux 3.3a, polled by
// capture-pane while the pane's process exits, about every other time never
// reaps it (it stays a zombie, #{pane_dead} is 1 and the status empty), even
// for "sleep 0.3". #{pane_dead} only says that the terminal closed.
func (s *tmuxSession) exited() (done bool, status string) {
	data, err := os.ReadFile(s.status)
	if err != nil {
		return false, ""
	}
	return true, strings.TrimSpace(string(data))
}

// paneDead reads #{pane_dead}: 1 once nothing holds the pane's terminal.
func (s *tmuxSession) paneDead() string {
	out, err := s.tmux("list-panes", "-t", s.name, "-F", "#{pane_dead}")
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// buildPlaygroundInto builds the command into dir, from the module's root.
func buildPlaygroundInto(t *testing.T, dir string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no module root at %s: %v", root, err)
	}
	bin := filepath.Join(dir, "playground")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/playground")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startTmux starts the program in a detached 80x50 tmux session (the
// width a learner's terminal has), with
// TERM=xterm-256color and without NO_COLOR. The pane stays (dead) after the
// program exits.
func startTmux(t *testing.T, argv ...string) *tmuxSession {
	t.Helper()
	id := fmt.Sprintf("playground-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	s := &tmuxSession{t: t, socket: id, name: id, status: filepath.Join(t.TempDir(), "status")}
	if _, err := s.tmux("new-session", "-d", "-s", s.name, "-x", "80", "-y", "50"); err != nil {
		t.Fatal(err)
	}
	socketPath, _ := s.tmux("display-message", "-p", "-t", s.name, "#{socket_path}")
	t.Cleanup(func() {
		s.tmux("kill-session", "-t", s.name)
		s.tmux("kill-server") // the test's own server, if anything is left
		if path := strings.TrimSpace(socketPath); path != "" {
			os.Remove(path) // tmux 3.3a leaves it behind
		}
	})
	if _, err := s.tmux("set-option", "-t", s.name, "remain-on-exit", "on"); err != nil {
		t.Fatal(err)
	}
	// With more than one argument tmux runs the command itself, not through
	// a shell: the arguments need no quoting.
	wrapper := `status=$1; shift; "$@"; code=$?; echo $code >"$status.tmp" && mv "$status.tmp" "$status"; exit $code`
	cmd := []string{"respawn-pane", "-k", "-t", s.name, "sh", "-c", wrapper, "sh", s.status, "env", "-u", "NO_COLOR", "TERM=xterm-256color"}
	if _, err := s.tmux(append(cmd, argv...)...); err != nil {
		t.Fatal(err)
	}
	return s
}

// tmuxLineAt is the line of text around index i.
func tmuxLineAt(text string, i int) string {
	start := strings.LastIndex(text[:i], "\n") + 1
	end := strings.Index(text[i:], "\n")
	if end < 0 {
		return text[start:]
	}
	return text[start : i+end]
}

// tmuxCheckLine is a passed check.
var tmuxCheckLine = regexp.MustCompile(`(?m)^\s*✓ `)

// tmuxSYNLine is the timeline's line for the client's SYN.
var tmuxSYNLine = regexp.MustCompile(`wire\s+→ SYN\s+\[S\]`)

// TestLessonInTmux drives lesson 1 the way a learner does, in a real
// terminal: keys typed into tmux, the screen read back from it.
func TestLessonInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (scripts/setup.sh --test installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root")
	}
	bin := buildPlaygroundInto(t, t.TempDir())
	port := strconv.Itoa(freePort(t))
	s := startTmux(t, bin, "lesson1", "--port", port)
	const prompt = "▶ Enter: run step"

	// 1. The lesson and its first step, in color.
	s.waitCount("Lesson 1 · Creating a TCP server", 1)
	s.waitCount("Step 1/5", 1)
	s.waitCount(prompt, 1)
	if !strings.Contains(s.raw(), "\x1b[") {
		s.fatalf("no color escapes on a terminal with TERM=xterm-256color")
	}

	// 2. Enter runs step 1: the server listens; then step 2 asks.
	s.press("Enter")
	s.waitCount("server ● listening", 1)
	s.waitUntil("a check mark", tmuxCheckLine.MatchString)
	s.waitCount("Step 2/5", 1)
	s.waitCount(prompt, 2)

	// 3. Enter, then Enter at the prediction: the handshake, on the wire
	// before the server's code hears of the connection.
	s.press("Enter")
	s.waitCount("? Predict:", 1)
	s.press("Enter")
	screen := s.waitCount("server ● connection", 1)
	for _, text := range []string{"SYN+ACK", "handshake 1/3", "handshake 2/3", "handshake 3/3"} {
		if !strings.Contains(screen, text) {
			s.fatalf("%q is not on the screen once the server saw the connection", text)
		}
	}
	syn := tmuxSYNLine.FindStringIndex(screen)
	if syn == nil {
		s.fatalf("no SYN line on the screen")
	}
	if conn := strings.Index(screen, "server ● connection"); syn[0] > conn {
		// A SYN line marked "arrived late" came from the capture after the
		// timeline's reorder window: a busy machine, or a window too short.
		s.fatalf("the server's connection line comes before the SYN line:\n%s\n%s",
			tmuxLineAt(screen, conn), tmuxLineAt(screen, syn[0]))
	}

	// 4. b at step 3's prompt shows step 2 again as it ran, without
	// running anything: no new connection. r shows step 3 again.
	s.waitCount("Step 3/5", 1)
	s.waitCount(prompt, 3)
	if n := strings.Count(s.screen(), "Step 2/5"); n != 1 {
		s.fatalf("\"Step 2/5\" is on the screen %d times before going back, want 1", n)
	}
	s.press("b")
	s.waitCount("looking back: step 2, as it ran", 1)
	s.waitCount(prompt, 4)
	s.press("r")
	s.waitCount("Step 3/5", 2)
	s.waitCount(prompt, 5)
	if n := strings.Count(s.screen(), "client ○ dial"); n != 2 {
		s.fatalf("the client dialled %d times, counting the look back, want 1 dial shown twice", n)
	}

	// 5. q at step 3's prediction ends the program at once, with status 0.
	s.press("Enter")
	s.waitCount("think of your answer", 2)
	s.press("q")
	deadline := time.Now().Add(tmuxWait)
	done, status := s.exited()
	for ; !done; done, status = s.exited() {
		if time.Now().After(deadline) {
			s.fatalf("the program still runs %v after q", tmuxWait)
		}
		time.Sleep(tmuxPoll)
	}
	if status != "0" {
		s.fatalf("the program exited with status %s after q, want 0", status)
	}
	for s.paneDead() != "1" {
		if time.Now().After(deadline) {
			s.fatalf("the pane's terminal is still open %v after q", tmuxWait)
		}
		time.Sleep(tmuxPoll)
	}
	s.waitCount("You left lesson 1 at step 3 of 5", 1)

	// Nothing wrapped: capture-pane -J joins what the terminal wrapped.
	for _, line := range strings.Split(s.screen(), "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			s.fatalf("a line of %d columns in an 80-column terminal: %q", n, line)
		}
	}
}

// TestLessonToTheEndInTmux finishes lesson 1 in a real terminal, then
// `playground` lists it with its ✓ and names lesson 2 as next.
func TestLessonToTheEndInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (scripts/setup.sh --test installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root")
	}
	bin := buildPlaygroundInto(t, t.TempDir())
	state := "XDG_STATE_HOME=" + t.TempDir()
	s := startTmux(t, state, bin, "lesson1", "--port", strconv.Itoa(freePort(t)))
	const prompt = "▶ Enter: run step"
	predictions := 0
	for step, predict := range []bool{false, true, true, false, false} {
		s.waitCount(fmt.Sprintf("Step %d/5", step+1), 1)
		s.waitCount(prompt, step+1)
		s.press("Enter")
		if predict {
			predictions++
			s.waitCount("think of your answer", predictions)
			s.press("Enter")
		}
	}
	s.waitCount("In another terminal, type:", 1)
	s.press("Enter")
	s.waitCount("Lesson 1 done: all 23 checks passed", 1)
	deadline := time.Now().Add(tmuxWait)
	for done, status := s.exited(); !done || status != "0"; done, status = s.exited() {
		if time.Now().After(deadline) {
			s.fatalf("the lesson did not exit with status 0 (done %v, status %q)", done, status)
		}
		time.Sleep(tmuxPoll)
	}

	list := startTmux(t, state, bin)
	screen := list.waitCount("Start: sudo "+bin+" next", 1)
	if !strings.Contains(screen, "✓  1  Creating a TCP server") || !strings.Contains(screen, " 2  The socket is a duplex stream  ← next") {
		list.fatalf("the lesson list does not show lesson 1 finished and lesson 2 next")
	}
}

// TestWatchNodeInTmux does what the notes' reader does: their own Node
// server, `playground watch` in an 80-column terminal beside it, and nc
// typing a line. The screen shows node's own calls (accept, the read of
// the line, the 17-byte write, the close) beside the wire and the kernel,
// every line fitting the terminal, and Ctrl-C ends it.
func TestWatchNodeInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (scripts/setup.sh --test installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root")
	}
	requireCommand(t, "node")
	requireCommand(t, "nc")
	const port = "4962" // the process lane's tests use 4960-4969
	dir := t.TempDir()
	script := filepath.Join(dir, "server.js")
	if err := os.WriteFile(script, []byte(lesson.NotesServerJS), 0o644); err != nil {
		t.Fatal(err)
	}
	node := exec.Command("node", script)
	node.Env = append(os.Environ(), "PORT="+port)
	startServer(t, node)

	bin := buildPlaygroundInto(t, t.TempDir())
	s := startTmux(t, bin, "watch", "--port", port)
	s.waitCount("Ctrl-C to stop", 1)
	nc := exec.Command("nc", "-q", "1", "127.0.0.1", port)
	nc.Stdin = strings.NewReader("hi from the learner\n")
	if reply, err := nc.Output(); err != nil || !strings.Contains(string(reply), "Hello from server") {
		t.Fatalf("nc: %v, reply %q", err, reply)
	}
	for _, want := range []string{"accept", `"hi from the learner\n"`, `17 bytes "Hello from server"`, "close", "SYN_RECV → ESTABLISHED"} {
		s.waitCount(want, 1)
	}
	screen := s.screen()
	if !strings.Contains(screen, "node[") {
		s.fatalf("node's calls are not on its own lane")
	}
	for _, line := range strings.Split(screen, "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			s.fatalf("a line of %d columns in an 80-column terminal: %q", n, line)
		}
	}
	s.press("C-c")
	s.waitCount("0 process calls lost", 1)
}
