//go:build unix

package server

import (
	"context"
	"syscall"
	"testing"
)

// ReceiveBuffer must reach the listening socket (accepted sockets inherit
// it). Linux doubles the value asked for; other kernels keep it.
func TestReceiveBufferSet(t *testing.T) {
	s, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", ReceiveBuffer: 4096}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc, err := s.ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	rc.Control(func(fd uintptr) {
		got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	if gerr != nil {
		t.Fatal(gerr)
	}
	if got < 4096 || got > 2*4096 {
		t.Errorf("SO_RCVBUF = %d, want 4096 (or 8192 on Linux)", got)
	}
}
