package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Some tests need a process of their own: one that gives up root for good,
// one that is killed with SIGKILL. They run this test binary again with
// childEnv set, and TestMain runs the child's part instead of the tests.
const childEnv = "NETLAB_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "drop":
		exitChild(childDropRoot())
	case "hold":
		exitChild(childHold())
	default:
		exitChild(fmt.Errorf("unknown %s", childEnv))
	}
}

func exitChild(err error) {
	if err != nil {
		fmt.Printf("FAIL: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("ok")
	os.Exit(0)
}

// startChild runs this test binary as a child doing part.
func startChild(t *testing.T, part string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+part)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewReader(out)
}

// The playground sets the lab up as root, then drops to the user who ran
// sudo: the lab must keep working, since the namespace threads entered their
// namespaces while root.
func TestLabWorksAfterDroppingRoot(t *testing.T) {
	newLab(t, Config{}) // skips when not root
	cmd, out := startChild(t, "drop")
	all, _ := io.ReadAll(io.LimitReader(out, 1<<20))
	err := cmd.Wait()
	t.Logf("child:\n%s", all)
	if err != nil || !strings.HasSuffix(string(all), "ok\n") {
		t.Fatalf("child failed (%v)", err)
	}
}

func childDropRoot() error {
	ctx := context.Background()
	lab, err := New(ctx, Config{Link: Symmetric(Impairment{Delay: 10 * time.Millisecond})})
	if err != nil {
		return err
	}
	defer lab.Close()

	const nobody = 65534
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(nobody); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(nobody); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Uid:") || strings.HasPrefix(line, "Gid:") || strings.HasPrefix(line, "CapEff:") {
			fmt.Println(line)
		}
	}

	// Proof that root is gone: no new namespace, and New says why in one
	// line that errors.Is recognises.
	unshared := make(chan error)
	go func() {
		// Left locked: were the unshare to succeed, the thread would be
		// in another namespace and must end with this goroutine.
		runtime.LockOSThread()
		unshared <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	if err := <-unshared; !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("unshare after dropping root: %v, want EPERM", err)
	}
	_, err = New(ctx, Config{})
	fmt.Printf("New without root: %v\n", err)
	if !errors.Is(err, ErrPermission) || strings.Contains(err.Error(), "\n") {
		return fmt.Errorf("New without root: %v, want one line matching ErrPermission", err)
	}

	// The lab still works: listen on a port below 1024 in the server
	// namespace and dial it from the client namespace, on both families.
	hosts := []string{ServerAddr().String()}
	if lab.HasIPv6() {
		hosts = append(hosts, "["+ServerAddr6().String()+"]")
	}
	for _, host := range hosts {
		addr := host + ":80"
		var ln net.Listener
		if err := lab.InServer(func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
			return fmt.Errorf("listen as nobody: %w", err)
		}
		accepted := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				_, err = io.Copy(c, c)
				c.Close()
			}
			accepted <- err
		}()
		var c net.Conn
		if err := lab.InClient(func() (err error) { c, err = net.DialTimeout("tcp", addr, 5*time.Second); return }); err != nil {
			ln.Close()
			return fmt.Errorf("dial as nobody: %w", err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "hello")
		buf := make([]byte, 5)
		_, err := io.ReadFull(c, buf)
		c.Close()
		ln.Close()
		if aerr := <-accepted; aerr != nil {
			return fmt.Errorf("server as nobody: %w", aerr)
		}
		if err != nil || string(buf) != "hello" {
			return fmt.Errorf("echo as nobody: %q, %v", buf, err)
		}
		fmt.Printf("echo through the lab as uid %d: %s ok\n", os.Getuid(), addr)
	}
	return nil
}

// A lab whose process is killed outright leaves nothing: no namespace, no
// interface, no rule. The child makes a lab with a connection and packets
// waiting in the link's delay queue, then is killed with SIGKILL.
func TestKilledProcessLeavesNothing(t *testing.T) {
	probe := newLab(t, Config{}) // skips when not root
	probe.Close()
	before := hostState(t)
	cmd, out := startChild(t, "hold")
	lines := make(chan string)
	go func() {
		line, _ := out.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, out)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("child did not get ready")
	}
	var inodes [2]uint64
	if _, err := fmt.Sscanf(line, "ready %d %d", &inodes[0], &inodes[1]); err != nil {
		t.Fatalf("child said %q", line)
	}
	if h := holders(inodes[:]); len(h) < 2 {
		t.Fatalf("the child's namespaces are held by %v only", h)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitGone(t, inodes[:])
	checkHost(t, before)
}

func childHold() error {
	lab, err := New(context.Background(), Config{Link: Symmetric(Impairment{Delay: 200 * time.Millisecond})})
	if err != nil {
		return err
	}
	var ln net.Listener
	if err := lab.InServer(func() (err error) { ln, err = net.Listen("tcp", "198.51.100.1:4000"); return }); err != nil {
		return err
	}
	var c net.Conn
	if err := lab.InClient(func() (err error) { c, err = net.Dial("tcp", "198.51.100.1:4000"); return }); err != nil {
		return err
	}
	// Data in flight: segments waiting in the link when the kill comes,
	// and sockets (which hold their namespace) left open.
	c.Write(make([]byte, 64<<10))
	defer ln.Close()
	var inodes []uint64
	for _, ns := range []*namespace{lab.client, lab.server} {
		var st unix.Stat_t
		if err := unix.Fstat(int(ns.nsFile.Fd()), &st); err != nil {
			return err
		}
		inodes = append(inodes, st.Ino)
	}
	fmt.Printf("ready %d %d\n", inodes[0], inodes[1])
	time.Sleep(time.Minute)
	return errors.New("not killed")
}
