package kernel

import "testing"

func TestStateString(t *testing.T) {
	tests := []struct {
		state State
		want  string
	}{
		{Established, "ESTABLISHED"},
		{SynSent, "SYN_SENT"},
		{SynRecv, "SYN_RECV"},
		{FinWait1, "FIN_WAIT1"},
		{FinWait2, "FIN_WAIT2"},
		{TimeWait, "TIME_WAIT"},
		{Close, "CLOSE"},
		{CloseWait, "CLOSE_WAIT"},
		{LastAck, "LAST_ACK"},
		{Listen, "LISTEN"},
		{Closing, "CLOSING"},
		{NewSynRecv, "NEW_SYN_RECV"},
		{0, "STATE(0)"},
		{13, "STATE(13)"},
	}
	for _, tt := range tests {
		if got := tt.state.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", uint8(tt.state), got, tt.want)
		}
	}
}

func TestMaybeTimeWait(t *testing.T) {
	tests := []struct {
		old, new State
		want     bool
	}{
		{FinWait2, Close, true},
		{LastAck, Close, false},
		{Established, Close, false},
		{FinWait1, FinWait2, false},
	}
	for _, tt := range tests {
		if got := (StateChange{Old: tt.old, New: tt.new}).MaybeTimeWait(); got != tt.want {
			t.Errorf("%s→%s: MaybeTimeWait() = %v, want %v", tt.old, tt.new, got, tt.want)
		}
	}
}

func TestFilterStateMask(t *testing.T) {
	if got := (Filter{}).stateMask(); got != ^uint32(0) {
		t.Errorf("no states: mask %#x, want all", got)
	}
	if got, want := (Filter{States: []State{Listen, TimeWait}}).stateMask(), uint32(1<<10|1<<6); got != want {
		t.Errorf("LISTEN, TIME_WAIT: mask %#x, want %#x", got, want)
	}
}
