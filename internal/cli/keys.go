package cli

import (
	"context"
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// keyReader reads single key presses from a terminal: it turns off line
// buffering and echo (but not signals, so Ctrl-C still interrupts), and
// polls with a timeout so that its goroutine stops when asked instead of
// sitting in a read forever. Stop restores the terminal.
type keyReader struct {
	fd      int
	saved   *unix.Termios
	keys    chan byte
	stop    chan struct{}
	wg      sync.WaitGroup
	stopped sync.Once
}

// newKeyReader starts reading keys from f, which must be a terminal.
func newKeyReader(f *os.File) (*keyReader, error) {
	fd := int(f.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *saved
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	k := &keyReader{fd: fd, saved: saved, keys: make(chan byte, 16), stop: make(chan struct{})}
	k.wg.Add(1)
	go k.loop()
	return k, nil
}

func (k *keyReader) loop() {
	defer k.wg.Done()
	buf := make([]byte, 16)
	for {
		select {
		case <-k.stop:
			return
		default:
		}
		fds := []unix.PollFd{{Fd: int32(k.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err != nil || fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
			close(k.keys)
			return
		}
		m, err := unix.Read(k.fd, buf)
		if err != nil || m == 0 {
			close(k.keys)
			return
		}
		for _, b := range buf[:m] {
			select {
			case k.keys <- b:
			case <-k.stop:
				return
			}
		}
	}
}

// next waits for a key; ok is false when the terminal closed.
func (k *keyReader) next(ctx context.Context) (b byte, ok bool, err error) {
	select {
	case b, ok = <-k.keys:
		return b, ok, nil
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
}

// Stop ends the reading goroutine and restores the terminal's mode.
func (k *keyReader) Stop() {
	k.stopped.Do(func() {
		close(k.stop)
		k.wg.Wait()
		unix.IoctlSetTermios(k.fd, unix.TCSETS, k.saved)
	})
}

// terminalWidth is the width of the terminal behind f, or fallback.
func terminalWidth(f *os.File, fallback int) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return fallback
	}
	return int(ws.Col)
}
