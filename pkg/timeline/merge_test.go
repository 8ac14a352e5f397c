package timeline

import (
	"context"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
)

// mergeAll runs m while add feeds it; add may call emitted(n) to wait until
// n events have come out. It returns everything emitted.
func mergeAll(t *testing.T, m *Merger, add func(ctx context.Context, emitted func(n int))) []Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	emittedCh := make(chan Event, 64)
	done := make(chan error, 1)
	go func() {
		done <- m.Run(ctx, func(e Event) error { emittedCh <- e; return nil })
	}()
	var out []Event
	add(ctx, func(n int) {
		for len(out) < n {
			out = append(out, <-emittedCh)
		}
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(emittedCh)
	for e := range emittedCh {
		out = append(out, e)
	}
	return out
}

// TestMergeOrdersByTime: events that arrive out of order within the window
// come out in time order, ties in arrival order.
func TestMergeOrdersByTime(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMerger(DefaultReorderWindow, 16)
	m.now = func() time.Time { return base } // the window never passes: all held until the end
	at := func(us int, src Source) Event {
		return Event{Time: base.Add(time.Duration(us) * time.Microsecond), Source: src, Segment: segWithFrame(uint64(us))}
	}
	out := mergeAll(t, m, func(ctx context.Context, _ func(int)) {
		m.Add(ctx, at(700, SourceWire)) // the app's event is observed first...
		m.Add(ctx, at(100, SourceWire)) // ...the handshake it depended on arrives later
		m.Add(ctx, at(300, SourceWire))
		m.Add(ctx, at(300, SourceWire))
	})
	var got []time.Duration
	for _, e := range out {
		got = append(got, e.Time.Sub(base))
		if e.Late {
			t.Errorf("event at %v marked late", e.Time.Sub(base))
		}
	}
	want := []time.Duration{100 * time.Microsecond, 300 * time.Microsecond, 300 * time.Microsecond, 700 * time.Microsecond}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if m.Late() != 0 {
		t.Errorf("Late() = %d, want 0", m.Late())
	}
}

// TestMergeLate: an event older than one already emitted is shown at once,
// marked late, and counted.
func TestMergeLate(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMerger(DefaultReorderWindow, 16)
	m.now = func() time.Time { return base.Add(time.Hour) } // every window has passed
	out := mergeAll(t, m, func(ctx context.Context, emitted func(int)) {
		m.Add(ctx, Event{Time: base.Add(2 * time.Millisecond)})
		emitted(1)
		m.Add(ctx, Event{Time: base.Add(1 * time.Millisecond)})
		emitted(2)
	})
	if len(out) != 2 || out[0].Late || !out[1].Late || m.Late() != 1 {
		t.Fatalf("out %+v, late %d: want the second marked late", out, m.Late())
	}
}

func segWithFrame(n uint64) (s capture.Segment) { s.Frame = n; return s }

// TestMergeAddAfterCancel: an event that fits in the buffer is queued even
// when the producer's context is done (a server closing on Ctrl-C still has
// its close events shown).
func TestMergeAddAfterCancel(t *testing.T) {
	m := NewMerger(DefaultReorderWindow, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	base := time.Now()
	for i := 0; i < 1000; i++ {
		m.Add(ctx, Event{Time: base.Add(time.Duration(i))})
	}
	runCtx, stop := context.WithCancel(context.Background())
	stop()
	n := 0
	if err := m.Run(runCtx, func(Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 1000 {
		t.Errorf("%d of 1000 events delivered", n)
	}
}

// TestRelTimeKeepsItsWidth: the time column does not shift as a long
// watch goes on.
func TestRelTimeKeepsItsWidth(t *testing.T) {
	for _, d := range []time.Duration{12 * time.Second, 123 * time.Second, 1234 * time.Second, 12345 * time.Second, 86399 * time.Second} {
		if got := string(appendRelTime(nil, d)); len(got) != 12 {
			t.Errorf("%v shows as %q (%d cells), want 12", d, got, len(got))
		}
	}
}
