//go:build !linux

package netlab

import "context"

// Lab is a running lab. Only Linux has one: elsewhere New returns
// ErrUnsupported and no Lab exists.
type Lab struct{}

// New returns ErrUnsupported: the lab needs Linux network namespaces and TUN
// devices.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	return nil, &setupError{kind: ErrUnsupported, what: "the link lab needs Linux (network namespaces and TUN devices)"}
}

func (l *Lab) HasIPv6() bool               { return false }
func (l *Lab) SetLink(Link) error          { return ErrUnsupported }
func (l *Lab) Link() Link                  { return Link{} }
func (l *Lab) Stats() Stats                { return Stats{} }
func (l *Lab) InClient(func() error) error { return ErrUnsupported }
func (l *Lab) InServer(func() error) error { return ErrUnsupported }
func (l *Lab) ClientNamespacePath() string { return "" }
func (l *Lab) ServerNamespacePath() string { return "" }
func (l *Lab) Close() error                { return nil }
