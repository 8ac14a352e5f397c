//go:build !linux || !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"context"
	"fmt"
	"runtime"
)

// Tracer reports TCP state changes; on this system it cannot be opened.
type Tracer struct{}

// Open returns an error wrapping ErrUnsupported: the BPF program is built
// for little-endian Linux only.
func Open(Options) (*Tracer, error) {
	return nil, fmt.Errorf("%w: needs Linux on a little-endian CPU (this is %s/%s)", ErrUnsupported, runtime.GOOS, runtime.GOARCH)
}

// SetPorts returns ErrClosed: no Tracer opens here.
func (t *Tracer) SetPorts([]uint16) error { return ErrClosed }

// Lost returns 0.
func (t *Tracer) Lost() uint64 { return 0 }

// Run returns ErrClosed.
func (t *Tracer) Run(context.Context, func(StateChange)) error { return ErrClosed }

// Close does nothing.
func (t *Tracer) Close() error { return nil }
