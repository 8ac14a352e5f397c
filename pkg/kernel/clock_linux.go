package kernel

import (
	"time"

	"golang.org/x/sys/unix"
)

// The BPF program stamps each change with a kernel clock, and StateChange
// carries CLOCK_REALTIME, the clock pcap timestamps are on, so that the
// kernel lane and the wire merge on one clock.
//
// Chosen: bpf_ktime_get_tai_ns (Linux 6.1). CLOCK_TAI is CLOCK_REALTIME plus
// the kernel's TAI offset, a whole number of seconds (37 where an NTP daemon
// set it, 0 where none did), so the conversion is exact: it follows every
// step and slew of the wall clock, like the capture's timestamps. The offset
// is read with adjtimex, which needs no privilege, and read again every
// clockRefresh in case a leap second changed it. Measured here: a CLOSE→LISTEN
// stamped inside listen() lies between the time.Now() taken before and after
// the call, and CLOCK_TAI minus the offset differs from CLOCK_REALTIME read
// right after it by a few tens of nanoseconds (the time between the reads).
//
// Fallback: bpf_ktime_get_ns, CLOCK_MONOTONIC, plus REALTIME−MONOTONIC
// measured by reading REALTIME between two MONOTONIC reads (the narrowest of
// a few tries; its error is half the window, typically under 100 ns). It is
// measured again every clockRefresh, since a step of the wall clock (NTP,
// settimeofday) changes it.
const clockRefresh = time.Second

type kernelClock struct {
	tai bool
	// offset is added to the kernel timestamp to get Unix nanoseconds.
	offset int64
	// refreshedAt is the kernel timestamp of the last measurement.
	refreshedAt uint64
}

func newKernelClock(tai bool) (*kernelClock, error) {
	c := &kernelClock{tai: tai}
	if err := c.measure(); err != nil {
		return nil, err
	}
	return c, nil
}

// measure sets the offset from kernel time to Unix time.
func (c *kernelClock) measure() error {
	if c.tai {
		var tx unix.Timex
		if _, err := unix.Adjtimex(&tx); err != nil {
			return err
		}
		c.offset = -int64(tx.Tai) * int64(time.Second)
		var now unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_TAI, &now); err != nil {
			return err
		}
		c.refreshedAt = uint64(now.Nano())
		return nil
	}
	offset, _, mono, err := measureMonotonicOffset()
	if err != nil {
		return err
	}
	c.offset, c.refreshedAt = offset, uint64(mono)
	return nil
}

// measureMonotonicOffset returns REALTIME−MONOTONIC in nanoseconds, the
// uncertainty of that figure, and the MONOTONIC time it was taken at.
func measureMonotonicOffset() (offset int64, uncertainty time.Duration, mono int64, err error) {
	best := int64(-1)
	for range 5 {
		var m1, r, m2 unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &m1); err != nil {
			return 0, 0, 0, err
		}
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r); err != nil {
			return 0, 0, 0, err
		}
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &m2); err != nil {
			return 0, 0, 0, err
		}
		window := m2.Nano() - m1.Nano()
		if best < 0 || window < best {
			best = window
			mid := m1.Nano() + window/2
			offset, mono = r.Nano()-mid, mid
		}
	}
	return offset, time.Duration(best / 2), mono, nil
}

// realtime converts a kernel timestamp to wall-clock time.
func (c *kernelClock) realtime(kernelNs uint64) time.Time {
	if kernelNs > c.refreshedAt+uint64(clockRefresh) {
		// On failure keep the last offset: it is right unless the clock
		// stepped meanwhile.
		_ = c.measure()
	}
	return time.Unix(0, int64(kernelNs)+c.offset)
}
