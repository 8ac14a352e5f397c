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
