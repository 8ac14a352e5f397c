//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestClockConversion reads each kernel clock the BPF program may use,
// converts the reading to wall-clock time, and compares it with
// CLOCK_REALTIME read just after: the conversion's error is at most the
// difference, which also holds the time between the two reads.
func TestClockConversion(t *testing.T) {
	tests := []struct {
		name  string
		tai   bool
		clock int32
		// tolerance below 0: the TAI offset is exact; the MONOTONIC one
		// is known to half the window of the reads that measured it.
		tolerance time.Duration
	}{
		{"TAI", true, unix.CLOCK_TAI, 0},
		{"MONOTONIC", false, unix.CLOCK_MONOTONIC, time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newKernelClock(tt.tai)
			if err != nil {
				t.Fatal(err)
			}
			diffs := make([]time.Duration, 0, 1000)
			for range cap(diffs) {
				var k unix.Timespec
				if err := unix.ClockGettime(tt.clock, &k); err != nil {
					t.Fatal(err)
				}
				converted := c.realtime(uint64(k.Nano()))
				diff := time.Now().Sub(converted)
				if diff < -tt.tolerance {
					t.Fatalf("converted %s is after the wall clock read after it, by %v", converted.Format(time.RFC3339Nano), -diff)
				}
				diffs = append(diffs, diff)
			}
			slices.Sort(diffs)
			median, worst := diffs[len(diffs)/2], diffs[len(diffs)-1]
			// The worst sample includes whatever preempted the test
			// between its two clock reads (CI saw 1.8 ms on a busy
			// machine); the median is the conversion's own error.
			if median > 50*time.Microsecond {
				t.Errorf("conversion off by %v (median of 1000), want under 50µs", median)
			}
			t.Logf("wall clock read after minus converted kernel clock, of 1000: median %v, worst %v", median, worst)
		})
	}
}

// TestTAIOffsetIsWholeSeconds: adjtimex's TAI offset is what separates
// CLOCK_TAI from CLOCK_REALTIME.
func TestTAIOffsetIsWholeSeconds(t *testing.T) {
	var tx unix.Timex
	if _, err := unix.Adjtimex(&tx); err != nil {
		t.Fatal(err)
	}
	var tai, real unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_TAI, &tai); err != nil {
		t.Fatal(err)
	}
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &real); err != nil {
		t.Fatal(err)
	}
	measured := time.Duration(tai.Nano() - real.Nano())
	if got := measured.Round(time.Second); got != time.Duration(tx.Tai)*time.Second {
		t.Errorf("CLOCK_TAI − CLOCK_REALTIME = %v, adjtimex says %ds", measured, tx.Tai)
	}
	_, uncertainty, _, err := measureMonotonicOffset()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TAI offset %ds; REALTIME−MONOTONIC measured to ±%v", tx.Tai, uncertainty)
}

// TestMonotonicFallbackTimestamps runs the program on CLOCK_MONOTONIC, as
// it does on kernels without bpf_ktime_get_tai_ns, and checks a change made
// inside listen() against the wall clock around the call.
func TestMonotonicFallbackTimestamps(t *testing.T) {
	_, rec := openTracer(t, Options{Ports: []uint16{4714}, monotonicClock: true})
	before := time.Now()
	ln, err := net.Listen("tcp4", "127.0.0.1:4714")
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	defer ln.Close()
	changes := rec.waitFor(t, 5*time.Second, "CLOSE→LISTEN", func(c []StateChange) bool { return count(c, Close, Listen) == 1 })
	listening := find(t, changes, Close, Listen)
	// The offset is measured to well under a microsecond; allow for it.
	const slack = 10 * time.Microsecond
	if listening.Time.Before(before.Add(-slack)) || listening.Time.After(after.Add(slack)) {
		t.Errorf("CLOSE→LISTEN at %s, want between %s and %s (listen's call)",
			listening.Time.Format(time.RFC3339Nano), before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
	}
	t.Logf("listen() took %v; the change stamped %v after its start", after.Sub(before), listening.Time.Sub(before))
}
