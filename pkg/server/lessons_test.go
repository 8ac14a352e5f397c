package server_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/server"
)

// TestLines: newline framing answers each complete line, however the bytes
// were split into reads.
func TestLines(t *testing.T) {
	s, _ := start(t, server.Config{Behavior: server.Lines})
	c := dialServer(t, s, "127.0.0.1")
	c.Write([]byte("one\ntw"))
	want := "message 1: one\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("first reply %q, %v", got, err)
	}
	c.Write([]byte("o\nthree\n"))
	want = "message 2: two\nmessage 3: three\n"
	got = make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("next replies %q, %v", got, err)
	}
}

// TestReadDelay: two writes that arrive while the server waits come out of
// one read.
func TestReadDelay(t *testing.T) {
	s, r := start(t, server.Config{Behavior: server.Silent, ReadDelay: 300 * time.Millisecond})
	c := dialServer(t, s, "127.0.0.1")
	c.Write([]byte("hello"))
	c.Write([]byte("world"))
	e := r.waitKind(t, server.Data, 1)
	if string(e.Data) != "helloworld" {
		t.Errorf("first read %q, want both writes in one read", e.Data)
	}
}

// TestReplyOnEOF: after the client's FIN the server can still write.
func TestReplyOnEOF(t *testing.T) {
	s, _ := start(t, server.Config{Behavior: server.Silent, ReplyOnEOF: []byte("bye\n")})
	c := dialServer(t, s, "127.0.0.1")
	c.Write([]byte("hi"))
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye\n" {
		t.Errorf("after half-close: %q, %v", got, err)
	}
}

// TestSetReply changes the reply for the following reads.
func TestSetReply(t *testing.T) {
	s, r := start(t, server.Config{Behavior: server.Reply, Reply: []byte("Hello from server")})
	c := dialServer(t, s, "127.0.0.1")
	c.Write([]byte("a"))
	r.waitKind(t, server.Write, 1)
	s.SetReply([]byte("HTTP\n\nGot your message"))
	c.Write([]byte("b"))
	e := r.waitKind(t, server.Write, 1)
	if string(e.Data) != "HTTP\n\nGot your message" {
		t.Errorf("after SetReply: %q", e.Data)
	}
}

// TestBacklog: with backlog 1 and nobody accepting, the kernel completes
// the first handshakes and then stops answering SYNs.
func TestBacklog(t *testing.T) {
	s, _ := start(t, server.Config{Behavior: server.NeverAccept, Backlog: 1})
	addr := s.Addr().String()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		conns = append(conns, c)
	}
	// The queue (backlog+1 on Linux) is full: a third SYN gets no answer.
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatal("a third connection completed with a full accept queue")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("third dial: %v, want a timeout", err)
	}
}
