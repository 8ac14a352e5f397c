package cli

import (
	"os"
	"testing"
)

// TestMain keeps the in-process tests root: under `sudo scripts/test.sh`
// SUDO_UID is set, and a lesson run in-process would otherwise drop the
// whole test binary's privileges to the invoking user after its first
// capture. TestSudoDropsToInvokingUser tests the drop in a child process.
//
// Progress goes to a state directory of the tests' own, never to the real
// ~/.local/state/playground of whoever runs them.
func TestMain(m *testing.M) {
	os.Unsetenv("SUDO_UID")
	os.Unsetenv("SUDO_GID")
	state, err := os.MkdirTemp("", "playground-test-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", state)
	code := m.Run()
	os.RemoveAll(state)
	os.Exit(code)
}
