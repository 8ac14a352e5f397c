package cli

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal pair: what the test types into the
// master reaches the program's terminal, the slave.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestKeyReaderOnATerminal: single keys arrive without Enter, the
// terminal's mode comes back on Stop, and its width is read.
func TestKeyReaderOnATerminal(t *testing.T) {
	master, slave := openPty(t)
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 80}); err != nil {
		t.Fatal(err)
	}
	if w := terminalWidth(slave, 100); w != 80 {
		t.Errorf("terminalWidth %d, want 80", w)
	}
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := newKeyReader(slave)
	if err != nil {
		t.Fatal(err)
	}
	master.Write([]byte("bq"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, want := range []byte("bq") {
		b, ok, err := keys.next(ctx)
		if err != nil || !ok || b != want {
			t.Fatalf("key %q ok=%v err=%v, want %q", b, ok, err, want)
		}
	}
	keys.Stop()
	after, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if after.Lflag != before.Lflag {
		t.Errorf("the terminal's mode was not restored: lflag %x, was %x", after.Lflag, before.Lflag)
	}
}

// TestListAndResetWithoutRoot: the lesson list and reset need no root,
// and name the program as it can be typed again.
func TestListAndResetWithoutRoot(t *testing.T) {
	code, out, _ := run(t, "reset")
	if code != 0 || !strings.Contains(out, "Progress forgotten") {
		t.Fatalf("reset: %d %q", code, out)
	}
	code, out, _ = run(t)
	if code != 0 || !strings.Contains(out, " 1  Creating a TCP server  ← next") || !strings.Contains(out, "Start: sudo "+selfCommand()+" next") {
		t.Errorf("list: %d\n%s", code, out)
	}
	if got := selfCommand(); got != os.Args[0] && !strings.HasSuffix(got, "cli.test") {
		t.Errorf("selfCommand %q for %q", got, os.Args[0])
	}
}

// TestSudoProgressIsTheLearners: under sudo, list, next and reset read the
// invoking user's progress, not root's.
func TestSudoProgressIsTheLearners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sudo's situation needs root")
	}
	nobody, err := user.LookupId("65534")
	if err != nil {
		t.Fatalf("no user 65534: %v", err)
	}
	t.Setenv("SUDO_UID", "65534")
	t.Setenv("SUDO_GID", "65534")
	t.Setenv("XDG_STATE_HOME", "")
	path, err := progressPath()
	if want := filepath.Join(nobody.HomeDir, ".local", "state", "playground", "progress.json"); err != nil || path != want {
		t.Errorf("progressPath under sudo = %q, %v; want %q", path, err, want)
	}
}
