package cli

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKernelLaneInLessons runs lessons 1 and 3 with --json and checks the
// kernel lane against the wire: every transition the tracepoint reports
// for the lesson's port shows once, on the right side, in time order with
// the segments that caused it; the closer's TIME_WAIT comes after the last
// FIN and ss still lists it when the lesson has ended.
func TestKernelLaneInLessons(t *testing.T) {
	skipUnlessCapture(t)
	// after is the transition (its index in want) this one must follow
	// in time: the protocol orders these pairs, not every pair (the
	// closer's TIME_WAIT and the other side's LAST_ACK → CLOSE both follow
	// the second FIN, in either order on loopback).
	type transition struct {
		side, old, new string
		after          int
	}
	tests := []struct {
		lesson string
		want   []transition
		closer string // the side that waits in TIME_WAIT
	}{
		{"lesson1", []transition{
			{"server", "CLOSE", "LISTEN", -1},
			{"client", "CLOSE", "SYN_SENT", 0},
			{"server", "LISTEN", "SYN_RECV", 1},
			{"server", "SYN_RECV", "ESTABLISHED", 2},
			{"client", "ESTABLISHED", "FIN_WAIT1", 3},
			{"server", "ESTABLISHED", "CLOSE_WAIT", 4},
			{"server", "CLOSE_WAIT", "LAST_ACK", 5},
			{"client", "FIN_WAIT2", "TIME_WAIT", 6},
			{"server", "LAST_ACK", "CLOSE", 6},
			{"server", "LISTEN", "CLOSE", 8},
		}, "client"},
		{"lesson3", []transition{
			{"server", "ESTABLISHED", "FIN_WAIT1", -1},
			{"client", "ESTABLISHED", "CLOSE_WAIT", 0},
			{"client", "CLOSE_WAIT", "LAST_ACK", 1},
			{"server", "FIN_WAIT2", "TIME_WAIT", 2},
			{"client", "LAST_ACK", "CLOSE", 2},
		}, "server"},
	}
	for _, tt := range tests {
		t.Run(tt.lesson, func(t *testing.T) {
			port := freePort(t)
			code, out, errOut := run(t, tt.lesson, "--auto", "--json", "--port", strconv.Itoa(port))
			if code != 0 {
				t.Fatalf("exit %d: %s\n%s", code, errOut, out)
			}
			if strings.Contains(errOut, "kernel lane off") {
				t.Fatalf("the kernel lane did not run as root: %s", errOut)
			}
			events := parseJSONLines(t, out)
			var kernel []jsonEvent
			for _, e := range events {
				if e.Source == "kernel" && e.Kind == "state" {
					kernel = append(kernel, e)
				}
				if e.Source == "lesson" && e.Checkable != nil && !*e.Checkable {
					t.Errorf("a kernel check was not checkable as root: %s", e.Expect)
				}
			}
			// Each transition once per connection at most, with a side.
			seen := map[string]int{}
			for _, e := range kernel {
				if e.Side == "" {
					t.Errorf("a kernel event without a side: %+v", e)
				}
				if !strings.HasSuffix(e.Local, ":0") { // a connecting socket has no port yet
					seen[e.Local+" "+e.Remote+" "+e.Old+" "+e.New]++
				}
			}
			for k, n := range seen {
				if n > 1 {
					t.Errorf("transition %s shown %d times", k, n)
				}
			}
			// The wanted transitions, each after the one it follows.
			at := make([]int, len(tt.want)) // where each was found
			for k, w := range tt.want {
				from, since := 0, time.Time{}
				if w.after >= 0 {
					from, since = at[w.after]+1, kernel[at[w.after]].Time
				}
				i := from
				for ; i < len(kernel); i++ {
					if kernel[i].Side == w.side && kernel[i].Old == w.old && kernel[i].New == w.new {
						break
					}
				}
				if i == len(kernel) {
					t.Fatalf("no %s %s → %s after the transition it follows; kernel lane:\n%s", w.side, w.old, w.new, jsonKinds(kernel))
				}
				if kernel[i].Time.Before(since) {
					t.Errorf("%s %s → %s at %v, before the transition it follows (%v)", w.side, w.old, w.new, kernel[i].Time, since)
				}
				at[k] = i
			}
			// Causes before effects, on one clock.
			find := func(match func(jsonEvent) bool) jsonEvent {
				for _, e := range events {
					if match(e) {
						return e
					}
				}
				t.Fatalf("not found in:\n%s", out)
				return jsonEvent{}
			}
			if tt.lesson == "lesson1" {
				synack := find(func(e jsonEvent) bool { return e.Source == "wire" && e.Kind == "SYN+ACK" })
				ack := find(func(e jsonEvent) bool { return e.Source == "wire" && e.Step == "handshake 3/3" })
				clientEst := find(func(e jsonEvent) bool { return e.Side == "client" && e.New == "ESTABLISHED" })
				serverEst := find(func(e jsonEvent) bool { return e.Side == "server" && e.New == "ESTABLISHED" })
				connected := find(func(e jsonEvent) bool { return e.Source == "client" && e.Kind == "connected" })
				connection := find(func(e jsonEvent) bool { return e.Source == "server" && e.Kind == "connection" })
				for _, order := range []struct {
					what          string
					before, after jsonEvent
				}{
					{"the SYN+ACK, then the client's ESTABLISHED", synack, clientEst},
					{"the client's ESTABLISHED, then connect() returns", clientEst, connected},
					{"the last ACK, then the server's ESTABLISHED", ack, serverEst},
					{"the server's ESTABLISHED, then accept() returns", serverEst, connection},
				} {
					if order.after.Time.Before(order.before.Time) {
						t.Errorf("%s: %v, then %v", order.what, order.before.Time, order.after.Time)
					}
				}
			}
			tw := find(func(e jsonEvent) bool { return e.New == "TIME_WAIT" })
			var lastFIN jsonEvent // of TIME_WAIT's connection
			for _, e := range events {
				if e.Source == "wire" && e.Kind == "FIN" && (e.Src == tw.Local && e.Dst == tw.Remote || e.Src == tw.Remote && e.Dst == tw.Local) {
					lastFIN = e
				}
			}
			if tw.Side != tt.closer || tw.Time.Before(lastFIN.Time) {
				t.Errorf("TIME_WAIT on the %s at %v, want the %s after the last FIN at %v", tw.Side, tw.Time, tt.closer, lastFIN.Time)
			}
			ss, err := exec.Command("ss", "-Htan", "state", "time-wait", "sport = :"+strconv.Itoa(port)+" or dport = :"+strconv.Itoa(port)).Output()
			if err != nil {
				t.Fatalf("ss: %v", err)
			}
			if !strings.Contains(string(ss), tw.Local) {
				t.Errorf("ss does not list %s in TIME_WAIT after the lesson:\n%s", tw.Local, ss)
			}
		})
	}
}

func jsonKinds(events []jsonEvent) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString(e.Time.Format("15:04:05.000000") + " " + e.Side + " " + e.Old + " → " + e.New + " " + e.Local + " " + e.Remote + "\n")
	}
	return b.String()
}
