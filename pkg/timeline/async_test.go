package timeline

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/server"
)

// slowView blocks its first Render until released: a terminal that can't
// keep up.
type slowView struct {
	mu      sync.Mutex
	lines   []string
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (v *slowView) Render(e Event) error {
	v.once.Do(func() { close(v.started); <-v.release })
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lines = append(v.lines, e.Kind())
	return nil
}

func (v *slowView) Flush() error { return nil }

func (v *slowView) Summary(s string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lines = append(v.lines, s)
	return nil
}

// TestAsyncViewSummarizes: when the screen is stuck, Render never blocks;
// what doesn't fit in the queue is counted by kind and summarized once the
// screen catches up, before the events that follow.
func TestAsyncViewSummarizes(t *testing.T) {
	slow := &slowView{started: make(chan struct{}), release: make(chan struct{})}
	v := NewAsyncView(slow, 2)
	seg := func(k capture.Kind) Event {
		var s capture.Segment
		s.Kind = k
		return WireEvent(s)
	}
	v.Render(seg(capture.KindSYN)) // taken by the writer, which then blocks
	<-slow.started
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.Render(seg(capture.KindSYN))    // queued
		v.Render(seg(capture.KindSYNACK)) // queued
		for i := 0; i < 5; i++ {
			v.Render(seg(capture.KindSYN)) // counted
		}
		v.Render(seg(capture.KindACK)) // counted
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Render blocked behind a stuck screen")
	}
	if v.Skipped() != 6 {
		t.Errorf("Skipped() = %d, want 6", v.Skipped())
	}
	close(slow.release)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(slow.lines, "\n")
	want := strings.Join([]string{
		"SYN",
		"… 6 events not shown (the terminal was too slow): 5 wire SYN, 1 wire ACK",
		"SYN",
		"SYN+ACK",
	}, "\n")
	if got != want {
		t.Errorf("shown:\n%s\nwant:\n%s", got, want)
	}
}

// TestAsyncViewDrain: after Drain, everything queued before it is written,
// so narration printed next comes after the timeline lines.
func TestAsyncViewDrain(t *testing.T) {
	slow := &slowView{started: make(chan struct{}), release: make(chan struct{})}
	close(slow.release) // not stuck: just a separate writer
	v := NewAsyncView(slow, 16)
	for i := 0; i < 5; i++ {
		var s capture.Segment
		v.Render(WireEvent(s))
	}
	v.Drain()
	slow.mu.Lock()
	n := len(slow.lines)
	slow.mu.Unlock()
	if n != 5 {
		t.Errorf("%d lines written when Drain returned, want 5", n)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestViewsSummarize: every view the screen may use can say what a slow
// terminal missed, in its own format (a new view that can't won't compile
// into a screen, and this list says which must).
func TestViewsSummarize(t *testing.T) {
	var b strings.Builder
	styles := NewStyles(false)
	views := map[string]Summarizer{
		"log":    NewLogView(&b, styles, time.Time{}),
		"ladder": NewLadderView(&b, styles, 80, time.Time{}),
		"json":   NewJSONView(&b),
	}
	for name, v := range views {
		b.Reset()
		if err := v.Summary("… 3 events not shown"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v.Flush()
		if !strings.Contains(b.String(), "3 events not shown") {
			t.Errorf("%s view wrote %q", name, b.String())
		}
	}
}

// TestLogViewNamesTheConnection: once a second connection shows up, the
// programs' lines say which connection they belong to.
func TestLogViewNamesTheConnection(t *testing.T) {
	var b strings.Builder
	v := NewLogView(&b, NewStyles(false), time.Time{})
	now := time.Now()
	for i, stream := range []int64{0, 1, 0} {
		e := ServerEvent(server.Event{Time: now.Add(time.Duration(i) * time.Millisecond), Kind: server.Data, Data: []byte("x")})
		e.Stream = stream
		v.Render(e)
	}
	v.Flush()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || strings.Contains(lines[0], "#0") || !strings.Contains(lines[1], "#1 1 byte") || !strings.Contains(lines[2], "#0 1 byte") {
		t.Errorf("lines:\n%s", b.String())
	}
}
