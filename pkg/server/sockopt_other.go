//go:build !unix

package server

import (
	"errors"
	"net"
	"syscall"
)

// setReceiveBuffer is only needed by the flow-control lesson, which runs
// where the capture runs (Linux, macOS).
func setReceiveBuffer(syscall.RawConn, int) error {
	return errors.ErrUnsupported
}

// setBacklog is only needed by the backlog lesson, which runs where the
// capture runs (Linux, macOS).
func setBacklog(*net.TCPListener, int) error {
	return errors.ErrUnsupported
}
