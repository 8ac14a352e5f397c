package cli

import (
	"bufio"
	"bytes"
	"context"
	"github.com/tcp-playground/playground/pkg/lesson"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that a command's goroutine writes while the
// test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchSeesOtherPrograms: watch annotates a conversation between
// programs nobody here wrote: the Node.js server from the notes, nc and curl.
func TestWatchSeesOtherPrograms(t *testing.T) {
	skipUnlessCapture(t)
	requireCommand(t, "node")
	requireCommand(t, "nc")
	requireCommand(t, "curl")
	port := strconv.Itoa(freePort(t))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"watch", "--port", port, "--json"}, strings.NewReader(""), &out, &errOut)
	}()
	waitFor(t, "watch to open the capture", 10*time.Second, func() bool { return strings.Contains(errOut.String(), "watching") })

	script := filepath.Join(t.TempDir(), "server.js")
	if err := os.WriteFile(script, []byte(lesson.NotesServerJS), 0o644); err != nil {
		t.Fatal(err)
	}
	node := exec.Command("node", script)
	node.Env = append(os.Environ(), "PORT="+port)
	nodeOut, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { node.Process.Kill(); node.Wait() }()
	ready := make(chan struct{})
	var nodeLines []string
	var nodeMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(nodeOut)
		for sc.Scan() {
			nodeMu.Lock()
			nodeLines = append(nodeLines, sc.Text())
			nodeMu.Unlock()
			if strings.HasPrefix(sc.Text(), "Server listening") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("node did not start listening")
	}

	// nc: send a line, wait for the reply, then close.
	nc := exec.Command("nc", "-q", "1", "127.0.0.1", port)
	nc.Stdin = strings.NewReader("hello from nc\n")
	if reply, err := nc.Output(); err != nil || !strings.Contains(string(reply), "Hello from server") {
		t.Fatalf("nc: %v, reply %q", err, reply)
	}
	// curl: the server is no HTTP server, so curl gets a reply it can't
	// parse; what matters is the conversation on the wire.
	exec.Command("curl", "-s", "-m", "2", "http://127.0.0.1:"+port+"/").Run()

	waitFor(t, "both conversations on the timeline", 10*time.Second, func() bool {
		return strings.Count(out.String(), `"kind":"SYN"`) >= 2 && strings.Contains(out.String(), "GET / HTTP/1.1")
	})
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("watch exit %d: %s", code, errOut.String())
	}

	events := parseJSONLines(t, out.String())
	streams := map[string]bool{}
	var sawHello, sawReply, sawGET bool
	// The kernel lane shows the sockets of programs the playground did not
	// start: node's accepted sockets and the clients' own.
	kernelStates := map[string]bool{}
	for _, e := range events {
		if e.Source == "kernel" {
			kernelStates[e.Side+" "+e.Old+" → "+e.New] = true
			continue
		}
		if e.Source == "process" {
			continue // process_test.go checks them
		}
		if e.Source != "wire" {
			t.Errorf("watch showed a %s event", e.Source)
		}
		if e.Kind == "SYN" {
			if !strings.HasSuffix(e.Dst, ":"+port) || e.From != "client" {
				t.Errorf("SYN %s → %s from %s", e.Src, e.Dst, e.From)
			}
			streams[e.Src] = true
		}
	}
	// Previews are escaped as the log view shows them: \n is a backslash and an n.
	for _, e := range events {
		sawHello = sawHello || e.Preview == `hello from nc\n` && e.From == "client"
		sawReply = sawReply || e.Preview == "Hello from server" && e.From == "server"
		sawGET = sawGET || strings.HasPrefix(e.Preview, `GET / HTTP/1.1\r\nHost: 127.0.0.1:`) && e.From == "client"
	}
	raw := out.String()
	if len(streams) != 2 || !sawHello || !sawReply || !sawGET {
		t.Errorf("clients %v, nc's line %v, node's reply %v, curl's GET %v:\n%s", streams, sawHello, sawReply, sawGET, raw)
	}
	for _, want := range []string{"server SYN_RECV → ESTABLISHED", "client SYN_SENT → ESTABLISHED", "client FIN_WAIT2 → TIME_WAIT"} {
		if !kernelStates[want] {
			t.Errorf("the kernel lane did not show %s: %v", want, kernelStates)
		}
	}
	if !strings.Contains(errOut.String(), "dropped by the kernel") || !strings.Contains(errOut.String(), "0 kernel events lost") {
		t.Errorf("no summary on stderr: %q", errOut.String())
	}
	nodeMu.Lock()
	defer nodeMu.Unlock()
	if !strings.Contains(strings.Join(nodeLines, "\n"), "Client says: hello from nc") {
		t.Errorf("node did not log the message: %q", nodeLines)
	}
}

// requireCommand skips when a program the test drives is missing
// (scripts/setup.sh --test installs it; CI fails on the skip).
func requireCommand(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed", name)
	}
}
