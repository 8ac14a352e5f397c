package capture

import "testing"

func TestFlagsString(t *testing.T) {
	tests := []struct {
		flags Flags
		want  string
	}{
		{FlagSYN, "S"},
		{FlagSYN | FlagACK, "S."},
		{FlagACK, "."},
		{FlagPSH | FlagACK, "P."},
		{FlagFIN | FlagACK, "F."},
		{FlagFIN | FlagPSH | FlagACK, "FP."},
		{FlagRST | FlagACK, "R."},
		{FlagRST, "R"},
		{FlagSYN | FlagECE | FlagCWR, "SEW"},
		{FlagURG | FlagACK, ".U"},
		{0, "none"},
	}
	for _, tt := range tests {
		if got := tt.flags.String(); got != tt.want {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint8(tt.flags), got, tt.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		flags Flags
		len   int
		want  Kind
	}{
		{FlagSYN, 0, KindSYN},
		{FlagSYN | FlagACK, 0, KindSYNACK},
		{FlagACK, 0, KindACK},
		{FlagPSH | FlagACK, 5, KindData},
		{FlagACK, 1448, KindData},
		{FlagFIN | FlagACK, 0, KindFIN},
		{FlagFIN | FlagPSH | FlagACK, 3, KindFIN},
		{FlagRST | FlagACK, 0, KindRST},
		{FlagRST | FlagSYN, 0, KindRST},
	}
	for _, tt := range tests {
		if got := kindOf(tt.flags, tt.len); got != tt.want {
			t.Errorf("kindOf(%s, %d) = %s, want %s", tt.flags, tt.len, got, tt.want)
		}
	}
}

func TestAnalysisNames(t *testing.T) {
	a := Retransmission | SpuriousRetransmission | ZeroWindow
	if got, want := a.String(), "spurious retransmission, retransmission, zero window"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := Analysis(0).String(); got != "" {
		t.Errorf("no analysis: %q, want empty", got)
	}
}
