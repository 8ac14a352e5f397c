//go:build !linux

package kernel

import (
	"fmt"
	"runtime"
)

// Sockets returns an error wrapping ErrUnsupported: sock_diag is Linux's.
func Sockets(Filter) ([]Socket, error) {
	return nil, fmt.Errorf("%w: sock_diag needs Linux (this is %s)", ErrUnsupported, runtime.GOOS)
}

// Diag is an open sock_diag socket: Linux only.
type Diag struct{}

// OpenDiag returns an error wrapping ErrUnsupported: sock_diag is Linux's.
func OpenDiag() (*Diag, error) {
	return nil, fmt.Errorf("%w: sock_diag needs Linux (this is %s)", ErrUnsupported, runtime.GOOS)
}

// Close does nothing.
func (d *Diag) Close() error { return nil }

// Sockets returns an error wrapping ErrUnsupported.
func (d *Diag) Sockets(Filter) ([]Socket, error) { return Sockets(Filter{}) }
