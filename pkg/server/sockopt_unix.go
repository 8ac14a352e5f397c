//go:build unix

package server

import (
	"net"
	"syscall"
)

// setReceiveBuffer sets SO_RCVBUF on a socket before listen(2): accepted
// sockets inherit it, and it must be set before the handshake because the
// window scale is agreed there.
func setReceiveBuffer(rc syscall.RawConn, size int) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
	}); err != nil {
		return err
	}
	return serr
}

// setBacklog calls listen(2) again on a listening socket: on Linux and the
// BSDs that only changes the length of its accept queue.
func setBacklog(l *net.TCPListener, backlog int) error {
	rc, err := l.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.Listen(int(fd), backlog)
	}); err != nil {
		return err
	}
	return serr
}
