package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

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
