//go:build !unix

package server

import (
	"errors"
	"syscall"
)

// setReceiveBuffer is only needed by the flow-control lesson, which runs
// where the capture runs (Linux, macOS).
func setReceiveBuffer(syscall.RawConn, int) error {
	return errors.ErrUnsupported
}
