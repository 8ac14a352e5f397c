package cli

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startServe runs `playground serve` in-process until the returned stop is
// called; stop returns its exit code.
func startServe(t *testing.T, args ...string) (port string, out, errOut *syncBuffer, stop func() int) {
	t.Helper()
	skipUnlessCapture(t)
	port = strconv.Itoa(freePort(t))
	out, errOut = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"serve", "--port", port}, args...), strings.NewReader(""), out, errOut)
	}()
	waitFor(t, "serve to listen", 10*time.Second, func() bool { return strings.Contains(errOut.String(), "serving on") })
	stopped := false
	stop = func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	return port, out, errOut, stop
}

// TestServeEscapesWhatPeersSend: bytes a peer sends can't move the cursor,
// set the title or clear the screen: the output holds no raw control byte.
func TestServeEscapesWhatPeersSend(t *testing.T) {
	port, out, _, stop := startServe(t, "--no-color")
	attack := "\x1b[2J\x1b[H\x1b]0;owned\x07\x9b31m\r\x08\x00evil \u202e text\xff\n"
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(attack))
	io.ReadFull(c, make([]byte, 17))
	c.Close()
	waitFor(t, "the data on the timeline", 10*time.Second, func() bool { return strings.Contains(out.String(), "peer closed") })
	if code := stop(); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	text := out.String()
	for i, r := range text {
		if (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x202e || r == 0xfffd {
			t.Fatalf("raw control character %U at byte %d in the output: %q", r, i, text[max(0, i-40):min(len(text), i+40)])
		}
	}
	if !strings.Contains(text, `"\x1b[2J\x1b[H\x1b]0;owned\x07\x9b31m\r\x08\x00evil \u202e text\xff\n"`) {
		t.Errorf("the payload is not shown escaped:\n%s", text)
	}
}

// TestServeOddPeers: a peer that connects and sends nothing, one that
// resets in the middle of a conversation, and one that sends 10 MB; serve
// shows each and keeps serving.
func TestServeOddPeers(t *testing.T) {
	port, out, errOut, stop := startServe(t, "--json")
	addr := "127.0.0.1:" + port

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	silent.Close()

	resetter, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	resetter.Write([]byte("hello"))
	resetter.(*net.TCPConn).SetLinger(0)
	resetter.Close() // RST, possibly while the server is writing its reply

	big, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	const size = 10 << 20
	go io.Copy(io.Discard, big) // the server replies to every read
	if _, err := big.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	big.(*net.TCPConn).CloseWrite()

	waitFor(t, "three connections to close", 20*time.Second, func() bool {
		return strings.Count(out.String(), `"source":"server","kind":"close"`) >= 3
	})
	// Still serving: an ordinary client gets its reply.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("still there?"))
	reply := make([]byte, 17)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, reply); err != nil || string(reply) != "Hello from server" {
		t.Fatalf("after odd peers: %q, %v", reply, err)
	}
	c.Close()
	big.Close()
	if code := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, errOut.String())
	}

	events := parseJSONLines(t, out.String())
	var dataBytes, rst int
	for _, e := range events {
		if e.Source == "server" && e.Kind == "data" {
			dataBytes += e.Len
		}
		if e.Source == "wire" && e.Kind == "RST" {
			rst++
		}
	}
	if dataBytes < size {
		t.Errorf("the server's data events hold %d bytes, want at least %d", dataBytes, size)
	}
	if rst == 0 {
		t.Errorf("no RST on the wire from the resetting peer")
	}
	if !strings.Contains(errOut.String(), " 0 dropped by the kernel") {
		t.Errorf("stderr: %q", errOut.String())
	}
}

// TestServeWarnsWhenExposed: listening on all addresses says who can now
// connect; the default stays on loopback and says nothing.
func TestServeWarnsWhenExposed(t *testing.T) {
	_, _, errOut, stop := startServe(t, "--host", "0.0.0.0")
	stop()
	if !strings.Contains(errOut.String(), "warning: listening on 0.0.0.0: any machine that can reach this one can now connect") {
		t.Errorf("no exposure warning: %q", errOut.String())
	}
	_, _, errOut, stop = startServe(t)
	stop()
	if strings.Contains(errOut.String(), "warning") || !strings.Contains(errOut.String(), "serving on 127.0.0.1:") {
		t.Errorf("default serve: %q", errOut.String())
	}
}
