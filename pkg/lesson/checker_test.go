package lesson

import (
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/server"
	"github.com/tcp-playground/playground/pkg/timeline"
)

func wireAt(t time.Time, k capture.Kind) timeline.Event {
	var s capture.Segment
	s.Time, s.Kind, s.FromClient = t, k, k == capture.KindSYN
	return timeline.WireEvent(s)
}

func serverAt(t time.Time, k server.Kind) timeline.Event {
	return timeline.ServerEvent(server.Event{Time: t, Kind: k})
}

func mustExpects(t *testing.T, lines ...string) []Expect {
	t.Helper()
	var out []Expect
	for _, l := range lines {
		e, err := ParseExpect(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestCheckerOrder: ordered expectations follow the events' times, even
// when the capture delivered the handshake after the server's event.
func TestCheckerOrder(t *testing.T) {
	base := time.Now().Add(time.Second)
	tests := []struct {
		name   string
		events []timeline.Event
		want   []bool
	}{
		{"in order", []timeline.Event{wireAt(base, capture.KindSYN), serverAt(base.Add(time.Millisecond), server.Connection)}, []bool{true, true}},
		{"capture late", []timeline.Event{serverAt(base.Add(time.Millisecond), server.Connection), wireAt(base, capture.KindSYN)}, []bool{true, true}},
		{"really out of order", []timeline.Event{serverAt(base, server.Connection), wireAt(base.Add(time.Millisecond), capture.KindSYN)}, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c checker
			done := c.start(mustExpects(t, "wire SYN", "server connection"))
			for _, e := range tt.events {
				c.observe(e)
			}
			got := c.finish()
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Fatalf("matched %v, want %v", got, tt.want)
				}
			}
			select {
			case <-done:
				if !tt.want[1] {
					t.Error("done, though an expectation is unmet")
				}
			default:
				if tt.want[1] {
					t.Error("not done, though all expectations are met")
				}
			}
		})
	}
}

// TestCheckerNoneAndMin: expect-none counts what must not happen, min=N
// needs N events.
func TestCheckerNoneAndMin(t *testing.T) {
	base := time.Now().Add(time.Second)
	var c checker
	ex := mustExpects(t, "wire DATA min=2", "server connection")
	ex[1].None = true
	c.start(ex)
	c.observe(wireAt(base, capture.KindData))
	got := c.finish()
	if got[0] || got[1] {
		t.Errorf("one DATA, no connection: %v, want [false false]", got)
	}
	c.start(ex)
	c.observe(wireAt(base, capture.KindData))
	c.observe(wireAt(base.Add(time.Millisecond), capture.KindData))
	c.observe(serverAt(base.Add(2*time.Millisecond), server.Connection))
	got = c.finish()
	if !got[0] || !got[1] {
		t.Errorf("two DATA and a connection: %v, want [true true] (the connection seen)", got)
	}
}
