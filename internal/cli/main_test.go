package cli

import (
	"os"
	"testing"
)

// TestMain keeps the in-process tests root: under `sudo scripts/test.sh`
// SUDO_UID is set, and a lesson run in-process would otherwise drop the
// whole test binary's privileges to the invoking user after its first
// capture. TestSudoDropsToInvokingUser tests the drop in a child process.
func TestMain(m *testing.M) {
	os.Unsetenv("SUDO_UID")
	os.Unsetenv("SUDO_GID")
	os.Exit(m.Run())
}
