//go:build !linux || !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"context"
	"fmt"
	"runtime"
)

// Calls reports processes' socket calls; on this system it cannot be opened.
type Calls struct{}

// OpenCalls returns an error wrapping ErrUnsupported: the BPF programs are
// built for little-endian Linux only.
func OpenCalls(Options) (*Calls, error) {
	return nil, fmt.Errorf("%w: needs Linux on a little-endian CPU (this is %s/%s)", ErrUnsupported, runtime.GOOS, runtime.GOARCH)
}

// Missing returns nil.
func (c *Calls) Missing() error { return nil }

// SetPorts returns ErrClosed: no Calls opens here.
func (c *Calls) SetPorts([]uint16) error { return ErrClosed }

// Lost returns 0.
func (c *Calls) Lost() uint64 { return 0 }

// Run returns ErrClosed.
func (c *Calls) Run(context.Context, func(Call)) error { return ErrClosed }

// Close does nothing.
func (c *Calls) Close() error { return nil }
