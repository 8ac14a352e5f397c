//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests use ports 4700-4799 only: other tests on this machine use other
// ports at the same time.

// recorder collects what a Tracer's Run reports.
type recorder struct {
	mu      sync.Mutex
	changes []StateChange
}

func (r *recorder) add(c StateChange) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []StateChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

// waitFor polls until done holds for the changes recorded, or fails the test
// after timeout, listing what was recorded.
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, what string, done func([]StateChange) bool) []StateChange {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		changes := r.snapshot()
		if done(changes) {
			return changes
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still waiting for %s; recorded:\n%s", timeout, what, describe(changes))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func describe(changes []StateChange) string {
	var b strings.Builder
	for _, c := range changes {
		fmt.Fprintf(&b, "  %s %x %s→%s %s %s process=%v pid=%d %q\n",
			c.Time.Format("15:04:05.000000"), c.Sock, c.Old, c.New, c.Local, c.Remote, c.ProcessContext, c.PID, c.Comm)
	}
	return b.String()
}

// openTracer opens a Tracer and runs it until the test ends. It skips the
// test only when the process may not load BPF programs (not root).
func openTracer(t *testing.T, opts Options) (*Tracer, *recorder) {
	t.Helper()
	tracer, err := Open(opts)
	if errors.Is(err, ErrPermission) {
		t.Skipf("kernel tracer: %v (run the tests as root)", err)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- tracer.Run(ctx, rec.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := tracer.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tracer, rec
}

// count returns how many changes go from old to new.
func count(changes []StateChange, old, new State) int {
	n := 0
	for _, c := range changes {
		if c.Old == old && c.New == new {
			n++
		}
	}
	return n
}

// find returns the only change from old to new, failing the test if there
// is not exactly one.
func find(t *testing.T, changes []StateChange, old, new State) StateChange {
	t.Helper()
	var found []StateChange
	for _, c := range changes {
		if c.Old == old && c.New == new {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s→%s reported %d times, want once; recorded:\n%s", old, new, len(found), describe(changes))
	}
	return found[0]
}
