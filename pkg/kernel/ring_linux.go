package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// readRing hands each record of reader to handle until ctx is done (it
// returns nil) or the reader is closed (ErrClosed). The reader blocks in
// epoll; Flush wakes it once ctx is done, after which it returns the
// records already in the ring, then ErrFlushed. With poll > 0 it also
// wakes that often, for records the kernel stored without waking it. what
// names the reader in errors. The Tracer and Calls share it.
func readRing(ctx context.Context, reader *ringbuf.Reader, poll time.Duration, what string, handle func(raw []byte)) error {
	stop := make(chan struct{})
	var stopper sync.WaitGroup
	stopper.Go(func() {
		select {
		case <-ctx.Done():
			reader.Flush()
		case <-stop:
		}
	})
	defer stopper.Wait()
	defer close(stop)

	var record ringbuf.Record
	for {
		if poll > 0 {
			reader.SetDeadline(time.Now().Add(poll))
		}
		err := reader.ReadInto(&record)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue
		case errors.Is(err, ringbuf.ErrFlushed):
			if ctx.Err() != nil {
				return nil
			}
			continue
		case errors.Is(err, ringbuf.ErrClosed), errors.Is(err, os.ErrClosed):
			return ErrClosed
		default:
			return fmt.Errorf("%s: reading the ring buffer: %w", what, err)
		}
		handle(record.RawSample)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// writePorts sets a program's watched_ports variable: a byte per port, 1
// for the ports in ports. It is memory shared with the BPF program, so it
// works after the process dropped its privileges. what names the program
// in errors.
func writePorts(v *ebpf.Variable, ports []uint16, what string) error {
	var set [65536]uint8
	for _, p := range ports {
		set[p] = 1
	}
	if err := v.Set(set); err != nil {
		return fmt.Errorf("%s: setting the watched ports: %w", what, err)
	}
	return nil
}

// readCounter reads a counter the BPF program adds to through shared
// memory: it reads until two reads agree, so that a torn read of a
// changing value is not returned.
func readCounter(v *ebpf.Variable) uint64 {
	var prev uint64
	for {
		var n uint64
		if err := v.Get(&n); err != nil {
			return prev
		}
		if n == prev {
			return n
		}
		prev = n
	}
}
