package capture

import (
	"strconv"
	"strings"
)

// Note explains the segment in one plain-language line for a learner:
// its handshake or teardown step, what it carries or acknowledges, and
// Wireshark's analysis remarks. It names the sides "client" and "server".
func (s *Segment) Note() string {
	var b strings.Builder
	b.Grow(96)
	sender, receiver := "server", "client"
	if s.FromClient {
		sender, receiver = "client", "server"
	}
	if s.Step != StepNone {
		b.WriteString(s.Step.String())
		b.WriteString(": ")
	}
	switch s.Step {
	case StepHandshake1:
		b.WriteString("the client asks to open a connection")
	case StepHandshake2:
		b.WriteString("the server's kernel agrees")
	case StepHandshake3:
		b.WriteString("established")
	case StepTeardown1:
		b.WriteString("the " + sender + " has nothing more to send")
	case StepTeardown2:
		b.WriteString("the " + sender + "'s kernel acknowledges the " + receiver + "'s FIN")
	case StepTeardown23:
		b.WriteString("the " + sender + " acknowledges and closes its side too")
	case StepTeardown3:
		b.WriteString("the " + sender + " closes its side too")
	case StepTeardown4:
		b.WriteString("closed; the " + sender + " waits in TIME_WAIT")
	case StepRefused:
		b.WriteString("connection refused: nothing listens on port " + strconv.Itoa(int(s.Src.Port())))
	case StepReset:
		b.WriteString("the " + sender + " aborts the connection")
	default:
		switch s.Kind {
		case KindData:
			b.WriteString("the " + sender + " sends " + Plural(s.Len, "byte"))
		case KindACK:
			// ack is the next sequence number expected; the SYN took number
			// 0, and a FIN, once acknowledged, the one after the last byte.
			last := s.Ack - 1
			if s.AcksFIN {
				last--
			}
			if s.Flags&FlagACK != 0 && last > 0 {
				b.WriteString("the " + sender + "'s kernel confirms bytes up to " + strconv.FormatUint(uint64(last), 10))
			}
		}
	}
	if s.Step != StepNone && s.Len > 0 {
		b.WriteString(", and it carries " + Plural(s.Len, "byte"))
	}
	if s.Analysis != 0 {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s.Analysis.String())
		b.WriteString(" (" + s.Analysis.Explain() + ")")
	}
	return b.String()
}

// Plural writes a count with its unit: "1 byte", "17 bytes".
func Plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
