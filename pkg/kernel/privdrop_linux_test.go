//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// privDropEnv makes the test binary, re-executed by TestAfterPrivilegeDrop,
// run privDropChild instead of the tests.
const privDropEnv = "KERNEL_TEST_PRIVILEGE_DROP_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(privDropEnv) == "1" {
		if err := privDropChild(); err != nil {
			fmt.Fprintln(os.Stderr, "privilege-drop child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestAfterPrivilegeDrop: the playground opens the tracer as root, then
// gives up root (setuid to nobody). Events must still arrive, and the
// watched ports and the lost counter still work. setuid applies to the
// whole process, so the test runs in a child process.
func TestAfterPrivilegeDrop(t *testing.T) {
	probe, err := Open(Options{Ports: []uint16{4730}})
	if errors.Is(err, ErrPermission) {
		t.Skipf("kernel tracer: %v (run the tests as root)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), privDropEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child: %s", out)
}

// privDropChild opens the tracer as root, drops to uid and gid 65534, then
// watches a new port and checks that a connection on it is reported.
func privDropChild() error {
	const (
		watchedBefore = 4730
		watchedAfter  = 4731
		nobody        = 65534
	)
	tracer, err := Open(Options{Ports: []uint16{watchedBefore}})
	if err != nil {
		return err
	}
	defer tracer.Close()
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- tracer.Run(ctx, rec.add) }()

	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(nobody); err != nil {
		return err
	}
	if err := syscall.Setuid(nobody); err != nil {
		return err
	}
	if os.Getuid() != nobody || os.Geteuid() != nobody || os.Getegid() != nobody {
		return fmt.Errorf("still uid %d euid %d egid %d after dropping to %d", os.Getuid(), os.Geteuid(), os.Getegid(), nobody)
	}
	// Proof that root is gone: a new BPF program may not be loaded.
	if _, err := Open(Options{Ports: []uint16{watchedAfter}}); !errors.Is(err, ErrPermission) {
		return fmt.Errorf("Open as uid %d: %v, want ErrPermission", nobody, err)
	}

	if err := tracer.SetPorts([]uint16{watchedAfter}); err != nil {
		return fmt.Errorf("SetPorts after the drop: %w", err)
	}
	for _, port := range []int{watchedBefore, watchedAfter} {
		ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return err
		}
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		s, err := ln.Accept()
		if err != nil {
			return err
		}
		c.Close()
		io.Copy(io.Discard, s)
		s.Close()
		ln.Close()
	}
	// sock_diag needs no privilege either.
	if _, err := Sockets(Filter{Ports: []uint16{watchedAfter}}); err != nil {
		return fmt.Errorf("Sockets after the drop: %w", err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		changes := rec.snapshot()
		if count(changes, LastAck, Close) == 1 && count(changes, Listen, Close) == 1 {
			for _, c := range changes {
				if c.Local.Port() != watchedAfter && c.Remote.Port() != watchedAfter {
					return fmt.Errorf("a change on a port no longer watched:\n%s", describe(changes))
				}
			}
			if len(changes) != 12 { // ten for the connection, two for the listener
				return fmt.Errorf("%d changes, want 12:\n%s", len(changes), describe(changes))
			}
			fmt.Printf("uid %d: %d changes on port %d, lost %d\n", os.Getuid(), len(changes), watchedAfter, tracer.Lost())
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after the drop, no complete connection reported on port %d:\n%s", watchedAfter, describe(changes))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-runErr; err != nil {
		return fmt.Errorf("Run: %w", err)
	}
	return tracer.Close()
}
