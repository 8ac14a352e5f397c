package cli

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildPlayground builds the command into a temporary directory that any
// user may read, so that it also runs after dropping to nobody.
func buildPlayground(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "playground-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	return buildPlaygroundInto(t, dir)
}

// procIDs reads the Uid: and Gid: lines (real, effective, saved, fs) of a
// process from /proc.
func procIDs(t *testing.T, pid int) (uids, gids string) {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			uids = strings.Join(strings.Fields(v), " ")
		}
		if v, ok := strings.CutPrefix(line, "Gid:"); ok {
			gids = strings.Join(strings.Fields(v), " ")
		}
	}
	return uids, gids
}

// TestSudoDropsToInvokingUser runs the binary as sudo would (root, with
// SUDO_UID and SUDO_GID of an unprivileged user): once the capture is open
// every uid and gid of the process is that user's, and the capture still
// shows the handshake.
func TestSudoDropsToInvokingUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, as under sudo")
	}
	skipUnlessCapture(t)
	bin := buildPlayground(t)
	port := strconv.Itoa(freePort(t))
	const nobody = "65534"

	cmd := exec.Command(bin, "watch", "--json", "--port", port)
	cmd.Env = append(os.Environ(), "SUDO_UID="+nobody, "SUDO_GID="+nobody, "SUDO_USER=nobody")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	errLines := bufio.NewScanner(stderr)
	if !errLines.Scan() || !strings.HasPrefix(errLines.Text(), "watching") {
		t.Fatalf("watch did not start: %q", errLines.Text())
	}
	// The capture is open and privileges are gone before "watching" is printed.
	uids, gids := procIDs(t, cmd.Process.Pid)
	if uids != "65534 65534 65534 65534" || gids != "65534 65534 65534 65534" {
		t.Errorf("after start: Uid %q Gid %q, want all 65534", uids, gids)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(10 * time.Second)
	var seen []string
	kernelLines := 0 // the kernel lane, loaded as root, still reads after the drop
	for len(seen) < 3 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended early; saw %v", seen)
			}
			if strings.Contains(l, `"source":"kernel"`) {
				kernelLines++
				continue
			}
			if !strings.Contains(l, `"source":"wire"`) {
				continue // the process lane: the test's own client
			}
			seen = append(seen, l)
		case <-timeout:
			t.Fatalf("the capture showed %d lines of the handshake after the drop, want 3: %v", len(seen), seen)
		}
	}
	for i, kind := range []string{`"kind":"SYN"`, `"kind":"SYN+ACK"`, `"kind":"ACK"`} {
		if !strings.Contains(seen[i], kind) {
			t.Errorf("line %d: %s, want %s", i, seen[i], kind)
		}
	}
	if kernelLines == 0 {
		t.Errorf("no kernel lane event after root was dropped")
	}
	cmd.Process.Signal(syscall.SIGINT)
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("watch after Ctrl-C: %v, want exit 0", err)
	}
}

// TestSudoProgressBelongsToTheUser: a lesson finished under sudo saves the
// progress after dropping root, so the file is the invoking user's.
func TestSudoProgressBelongsToTheUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, as under sudo")
	}
	skipUnlessCapture(t)
	bin := buildPlayground(t)
	state, err := os.MkdirTemp("", "playground-state-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(state)
	os.Chmod(state, 0o777) // writable by nobody, as a home directory would be

	cmd := exec.Command(bin, "lesson1", "--auto", "--port", strconv.Itoa(freePort(t)))
	cmd.Env = append(os.Environ(), "SUDO_UID=65534", "SUDO_GID=65534", "XDG_STATE_HOME="+state)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lesson1 under sudo: %v\n%s", err, out)
	}
	path := filepath.Join(state, "playground", "progress.json")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no progress saved: %v", err)
	}
	st := info.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("%s belongs to %d:%d, want the invoking user 65534:65534", path, st.Uid, st.Gid)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"1":`) {
		t.Errorf("progress does not record lesson 1: %s", data)
	}
}
