package cli

import (
	"bufio"
	"context"
	"fmt"
	"github.com/tcp-playground/playground/pkg/lesson"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The process lane's tests use ports 4960-4969.

// pythonServer is the notes' server in Python: it answers every read with
// "Hello from server" and closes when the client has nothing more to send.
const pythonServer = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
print("Server listening on port", sys.argv[1], flush=True)
while True:
    c, _ = s.accept()
    while True:
        data = c.recv(1024)
        if not data:
            break
        c.sendall(b"Hello from server")
    c.close()
`

// startServer starts a server program and waits until it says it listens.
func startServer(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Server listening") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not start listening", cmd.Path)
	}
}

// startWatch runs `playground watch --port PORT --json` until stop, which
// returns its output and stderr.
func startWatch(t *testing.T, port string) (out *syncBuffer, stop func() (errOut string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"watch", "--port", port, "--json"}, strings.NewReader(""), out, &errOut)
	}()
	waitFor(t, "watch to open the capture", 10*time.Second, func() bool { return strings.Contains(errOut.String(), "watching") })
	stopped := false
	stop = func() string {
		if !stopped {
			stopped = true
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("watch exit %d: %s", code, errOut.String())
			}
		}
		return errOut.String()
	}
	t.Cleanup(func() { stop() })
	return out, stop
}

// TestWatchProcessLane: watch shows the socket calls of a server it did
// not start and nobody changed, the notes' Node server and the same in
// Python, talking with nc and curl, in time order with the wire: accept
// after the handshake's last ACK, a read of what the client sent, the
// write of "Hello from server" before that segment's ACK, close after the
// client's FIN.
func TestWatchProcessLane(t *testing.T) {
	skipUnlessCapture(t)
	requireCommand(t, "nc")
	requireCommand(t, "curl")
	servers := []struct {
		name, comm, port string
		command          func(port, dir string) *exec.Cmd
	}{
		{"node", "node", "4960", func(port, dir string) *exec.Cmd {
			script := filepath.Join(dir, "server.js")
			if err := os.WriteFile(script, []byte(lesson.NotesServerJS), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("node", script)
			cmd.Env = append(os.Environ(), "PORT="+port)
			return cmd
		}},
		{"python", "python3", "4961", func(port, dir string) *exec.Cmd {
			return exec.Command("python3", "-c", pythonServer, port)
		}},
	}
	for _, server := range servers {
		t.Run(server.name, func(t *testing.T) {
			requireCommand(t, server.comm)
			out, stop := startWatch(t, server.port)
			cmd := server.command(server.port, t.TempDir())
			startServer(t, cmd)
			serverPID := uint32(cmd.Process.Pid)

			nc := exec.Command("nc", "-q", "1", "127.0.0.1", server.port)
			nc.Stdin = strings.NewReader("hello from nc\n")
			if reply, err := nc.Output(); err != nil || !strings.Contains(string(reply), "Hello from server") {
				t.Fatalf("nc: %v, reply %q", err, reply)
			}
			exec.Command("curl", "-s", "-m", "2", "http://127.0.0.1:"+server.port+"/").Run()
			closes := `"kind":"close","side":"server"`
			waitFor(t, "the server's two closes", 10*time.Second, func() bool { return strings.Count(out.String(), closes) >= 2 })
			errOut := stop()

			events := parseJSONLines(t, out.String())
			checkServerCalls(t, events, server.comm, serverPID, `hello from nc\n`)
			checkServerCalls(t, events, server.comm, serverPID, `GET / HTTP/1.1\r\n`)
			if !strings.Contains(errOut, ", 0 process calls lost") {
				t.Errorf("the summary does not say that no call was lost: %q", errOut)
			}
			if t.Failed() {
				t.Logf("watch --json:\n%s", out.String())
			}
		})
	}
}

// checkServerCalls finds the connection whose client sent a first segment
// starting with sent, and checks the server's calls on it against the wire.
func checkServerCalls(t *testing.T, events []jsonEvent, comm string, pid uint32, sent string) {
	t.Helper()
	at := func(i int) string {
		if i < 0 {
			return "missing"
		}
		e := events[i]
		return fmt.Sprintf("#%d %s %s %s", i, e.Time.Format("15:04:05.000000"), e.Source, e.Kind)
	}
	// The client's address, from its data segment.
	client := ""
	for _, e := range events {
		if e.Source == "wire" && e.Kind == "DATA" && e.From == "client" && strings.HasPrefix(e.Preview, sent) {
			client = e.Src
			break
		}
	}
	if client == "" {
		t.Errorf("no client segment with %q on the wire", sent)
		return
	}
	handshakeACK, accept, read, write, replySeg, replyACK, clientFIN, close := -1, -1, -1, -1, -1, -1, -1, -1
	for i, e := range events {
		fromClient := e.Source == "wire" && e.Src == client
		fromServer := e.Source == "wire" && e.Dst == client
		server := e.Source == "process" && e.Remote == client && e.Comm == comm
		switch {
		case fromClient && e.Step == "handshake 3/3":
			handshakeACK = i
		case server && e.Kind == "accept":
			accept = i
		case server && e.Kind == "read" && e.Len > 0 && read < 0:
			read = i
			if !strings.HasPrefix(e.Preview, sent) {
				t.Errorf("%s's read on %s: preview %q, want %q", comm, client, e.Preview, sent)
			}
		case server && e.Kind == "write" && write < 0:
			write = i
			if e.Len != 17 || e.Preview != "Hello from server" {
				t.Errorf("%s's write on %s: len %d preview %q, want 17 bytes \"Hello from server\"", comm, client, e.Len, e.Preview)
			}
		case fromServer && e.Kind == "DATA" && e.Preview == "Hello from server" && replySeg < 0:
			replySeg = i
		case fromClient && replySeg >= 0 && replyACK < 0 && e.Ack >= 18:
			replyACK = i
		case fromClient && strings.Contains(e.Flags, "F") && clientFIN < 0:
			clientFIN = i
		case server && e.Kind == "close":
			close = i
		}
		if server && e.PID != pid {
			t.Errorf("%s %s: pid %d, want the server's %d", e.Kind, client, e.PID, pid)
		}
	}
	before := func(a, b int, what string) {
		t.Helper()
		if a < 0 || b < 0 || a > b || events[a].Time.After(events[b].Time) {
			t.Errorf("%s (%s): want %s before %s", client, what, at(a), at(b))
		}
	}
	before(handshakeACK, accept, "the handshake's last ACK, then accept")
	before(accept, read, "accept, then the read")
	before(write, replySeg, "the write, then its segment")
	before(replySeg, replyACK, "the segment, then its ACK")
	before(clientFIN, close, "the client's FIN, then the server's close")
}

// TestWatchProcessLaneBurst: a burst of 1000 connections to a server in
// another process loses no call, and watch says so.
func TestWatchProcessLaneBurst(t *testing.T) {
	skipUnlessCapture(t)
	requireCommand(t, "python3")
	const port, conns = "4962", 1000
	out, stop := startWatch(t, port)
	startServer(t, exec.Command("python3", "-c", `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1024)
print("Server listening", flush=True)
while True:
    c, _ = s.accept()
    c.recv(1024)
    c.sendall(b"Hello from server")
    c.close()
`, port))
	burst := exec.Command("python3", "-c", `
import socket, sys, threading
def run(n):
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        c.sendall(b"x")
        while c.recv(1024):
            pass
        c.close()
threads = [threading.Thread(target=run, args=(int(sys.argv[2]) // 8,)) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
`, port, strconv.Itoa(conns))
	if msg, err := burst.CombinedOutput(); err != nil {
		t.Fatalf("burst: %v: %s", err, msg)
	}
	closes := `"source":"process","kind":"close"`
	waitFor(t, "every close", 20*time.Second, func() bool { return strings.Count(out.String(), closes) >= 2*conns })
	errOut := stop()

	counts := map[string]int{}
	for _, e := range parseJSONLines(t, out.String()) {
		if e.Source == "process" {
			counts[e.Comm+" "+e.Kind]++
		}
	}
	// Each connection: the client connects, writes, reads the reply and
	// the end of the stream, closes; the server accepts, reads, writes,
	// closes.
	want := map[string]int{
		"python3 connect": conns, "python3 accept": conns, "python3 write": 2 * conns,
		"python3 read": 3 * conns, "python3 close": 2 * conns,
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
	if !strings.Contains(errOut, ", 0 process calls lost") {
		t.Errorf("the summary does not say that no call was lost: %q", errOut)
	}
}
