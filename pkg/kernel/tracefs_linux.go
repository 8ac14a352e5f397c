//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Attaching to a tracepoint needs its id, which only tracefs tells. Many
// systems mount tracefs at boot; where none is mounted (this project's own
// machine), Open mounts it for the moment of the attach and unmounts it
// again, leaving the system as it found it. The attached program does not
// need tracefs afterwards.
const tracefsPath = "/sys/kernel/tracing"

// tracefsMu serializes the mount and unmount of Opens running at once.
var tracefsMu sync.Mutex

// withTracefs runs attach with tracefs mounted.
func withTracefs(attach func() error) error {
	tracefsMu.Lock()
	defer tracefsMu.Unlock()
	if tracefsMounted() {
		return attach()
	}
	if err := unix.Mount("tracefs", tracefsPath, "tracefs", 0, ""); err != nil {
		switch {
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return fmt.Errorf("%w: mounting tracefs at %s: %w", ErrPermission, tracefsPath, err)
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV):
			return fmt.Errorf("%w: no tracefs in this kernel (mounting it at %s: %w)", ErrUnsupported, tracefsPath, err)
		}
		return fmt.Errorf("mounting tracefs at %s: %w", tracefsPath, err)
	}
	// MNT_DETACH: nothing may keep the mount busy, but if something does,
	// the unmount still happens when it lets go.
	defer unix.Unmount(tracefsPath, unix.MNT_DETACH)
	return attach()
}

// tracefsMounted reports whether tracefs is where cilium/ebpf looks for it.
func tracefsMounted() bool {
	for _, p := range []struct {
		path  string
		magic int64
	}{
		{tracefsPath, unix.TRACEFS_MAGIC},
		{"/sys/kernel/debug/tracing", unix.TRACEFS_MAGIC},
		{"/sys/kernel/debug/tracing", unix.DEBUGFS_MAGIC},
	} {
		var st unix.Statfs_t
		if err := unix.Statfs(p.path, &st); err == nil && int64(st.Type) == p.magic {
			if _, err := os.Stat(p.path + "/events"); err == nil {
				return true
			}
		}
	}
	return false
}
