package capture

import (
	"net/netip"
	"strings"
	"time"
)

// Flags holds a TCP header's flag bits.
type Flags uint8

// The TCP flag bits, in the header's own order.
const (
	FlagFIN Flags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// flagLetters is tcpdump's tcp_flag_values table, in tcpdump's order, so that
// String prints what `tcpdump -n` prints between "Flags [" and "]".
var flagLetters = [...]struct {
	flag   Flags
	letter byte
}{
	{FlagFIN, 'F'}, {FlagSYN, 'S'}, {FlagRST, 'R'}, {FlagPSH, 'P'},
	{FlagACK, '.'}, {FlagURG, 'U'}, {FlagECE, 'E'}, {FlagCWR, 'W'},
}

// Has reports whether every bit of want is set.
func (f Flags) Has(want Flags) bool { return f&want == want }

// String returns tcpdump's letters: "S", "S.", ".", "P.", "F.", "R.", "FP.";
// "none" when no flag is set, as tcpdump says.
func (f Flags) String() string {
	var b [8]byte
	return string(f.AppendLetters(b[:0]))
}

// AppendLetters appends String's letters to dst without allocating.
func (f Flags) AppendLetters(dst []byte) []byte {
	if f == 0 {
		return append(dst, "none"...)
	}
	for _, fl := range flagLetters {
		if f&fl.flag != 0 {
			dst = append(dst, fl.letter)
		}
	}
	return dst
}

// Kind is what a beginner calls a segment.
type Kind uint8

const (
	KindACK    Kind = iota // no payload, no SYN/FIN/RST: only acknowledges
	KindSYN                // SYN without ACK: asks to open a connection
	KindSYNACK             // SYN with ACK: agrees to open one
	KindData               // carries payload (and no SYN, FIN or RST)
	KindFIN                // FIN, with or without payload: no more data from this side
	KindRST                // RST: the connection is aborted or refused
	KindCut                // the snap length cut the header before the flags: what it is is unknown
)

var kindNames = [...]string{
	KindACK: "ACK", KindSYN: "SYN", KindSYNACK: "SYN+ACK",
	KindData: "DATA", KindFIN: "FIN", KindRST: "RST", KindCut: "TCP?",
}

// Cut says what of a segment's TCP header the capture's snap length cut off
// (tcpdump -s N keeps the first N bytes of each frame). The IP header is
// whole in every case: the addresses, and the payload length it states, are
// the packet's.
type Cut uint8

const (
	CutNone Cut = iota
	// CutOptions: the fixed 20-byte TCP header is whole (ports, seq, ack,
	// flags, window), some of its options are not: an MSS or window scale
	// beyond the cut is unknown.
	CutOptions
	// CutHeader: the fixed TCP header itself is cut; only the addresses are
	// known, and the ports when their 4 bytes are there. Such a segment is
	// not tracked: Seq, Ack, Flags and Len are 0, Kind is KindCut.
	CutHeader
)

func (c Cut) String() string {
	switch c {
	case CutOptions:
		return "TCP options cut by the snap length"
	case CutHeader:
		return "TCP header cut by the snap length"
	}
	return ""
}

// NoStream is the Stream of a segment that belongs to no known connection:
// one whose header the snap length cut (CutHeader) on a 4-tuple not seen
// whole yet. tshark gives such a frame no tcp.stream either.
const NoStream = ^uint64(0)

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "?"
}

// kindOf classifies a segment; RST wins over everything, as the receiving
// kernel also lets it win.
func kindOf(f Flags, payloadLen int) Kind {
	switch {
	case f&FlagRST != 0:
		return KindRST
	case f&FlagSYN != 0 && f&FlagACK != 0:
		return KindSYNACK
	case f&FlagSYN != 0:
		return KindSYN
	case f&FlagFIN != 0:
		return KindFIN
	case payloadLen > 0:
		return KindData
	default:
		return KindACK
	}
}

// Step places a segment in the opening or closing of its connection.
type Step uint8

const (
	StepNone       Step = iota
	StepHandshake1      // SYN
	StepHandshake2      // SYN+ACK
	StepHandshake3      // the ACK that completes the handshake
	StepTeardown1       // the first FIN
	StepTeardown2       // the other side's kernel acknowledges that FIN
	StepTeardown23      // the other side acknowledges the first FIN and sends its own in one segment
	StepTeardown3       // the other side's FIN
	StepTeardown4       // the ACK of the second FIN: closed
	StepRefused         // RST answering a SYN: nothing listens on that port
	StepReset           // RST on an open connection: aborted
)

var stepNames = [...]string{
	StepNone:       "",
	StepHandshake1: "handshake 1/3",
	StepHandshake2: "handshake 2/3",
	StepHandshake3: "handshake 3/3",
	StepTeardown1:  "teardown 1/4",
	StepTeardown2:  "teardown 2/4",
	StepTeardown23: "teardown 2+3/4",
	StepTeardown3:  "teardown 3/4",
	StepTeardown4:  "teardown 4/4",
	StepRefused:    "refused",
	StepReset:      "reset",
}

func (s Step) String() string {
	if int(s) < len(stepNames) {
		return stepNames[s]
	}
	return "?"
}

// Analysis is a set of the remarks Wireshark's TCP analysis would make about
// a segment (its tcp.analysis.* fields), decided by the same rules.
type Analysis uint32

const (
	Retransmission Analysis = 1 << iota
	FastRetransmission
	SpuriousRetransmission
	OutOfOrder
	LostSegment // Wireshark: "previous segment not captured"
	AckedUnseen // Wireshark: "ACKed segment that wasn't captured"
	DuplicateAck
	ZeroWindow
	ZeroWindowProbe
	ZeroWindowProbeAck
	KeepAlive
	KeepAliveAck
	WindowUpdate
	WindowFull
	// ReusedPorts: a SYN (or SYN+ACK) with a new ISN on a 4-tuple an
	// earlier connection of this capture used; it starts a new stream.
	ReusedPorts
	// TFOSyn: a SYN carrying a TCP Fast Open cookie (it may carry data).
	TFOSyn
	// TFOAck: a SYN+ACK acknowledging the data of a Fast Open SYN.
	TFOAck
	// TFOIgnored: a SYN+ACK that does not acknowledge the data a Fast Open
	// SYN carried: the client must send it again.
	TFOIgnored
)

// analysisNames is in the order Names lists them, most telling first. Each
// name is Wireshark's, so a learner can look it up.
var analysisNames = [...]struct {
	bit  Analysis
	name string
}{
	{SpuriousRetransmission, "spurious retransmission"},
	{FastRetransmission, "fast retransmission"},
	{Retransmission, "retransmission"},
	{OutOfOrder, "out-of-order"},
	{LostSegment, "previous segment not captured"},
	{AckedUnseen, "acked segment that wasn't captured"},
	{DuplicateAck, "duplicate ack"},
	{ZeroWindowProbe, "zero window probe"},
	{ZeroWindowProbeAck, "zero window probe ack"},
	{ZeroWindow, "zero window"},
	{KeepAlive, "keep-alive"},
	{KeepAliveAck, "keep-alive ack"},
	{WindowUpdate, "window update"},
	{WindowFull, "window full"},
	{ReusedPorts, "port numbers reused"},
	{TFOSyn, "syn with tfo cookie"},
	{TFOAck, "syn-ack accepting tfo data"},
	{TFOIgnored, "syn-ack ignoring tfo data"},
}

// Names lists the remarks set in a, most telling first.
func (a Analysis) Names() []string {
	var names []string
	for _, n := range analysisNames {
		if a&n.bit != 0 {
			names = append(names, n.name)
		}
	}
	return names
}

func (a Analysis) String() string { return strings.Join(a.Names(), ", ") }

// Facts are what the packets show about a segment beyond Wireshark's
// remarks, so that an explanation never says what the packets contradict:
// the remark "duplicate ack" is Wireshark's, whether anything is missing is
// a fact of the capture.
type Facts uint16

const (
	// SeenAgain: the same packet as the previous one in this direction (same
	// IPv4 identification, TCP checksum, numbers and flags, under 100 ms
	// later), captured a second time, as `-i any` on a router takes it
	// arriving and leaving.
	SeenAgain Facts = 1 << iota
	// DSACK: the segment carries a D-SACK block: data arrived twice.
	DSACK
	// GapBeforeAck: the other side was seen sending beyond this segment's
	// ack, or a SACK block reports data beyond it: something is missing.
	GapBeforeAck
	// PeerWindowZero: the other side's last advertised window was zero.
	PeerWindowZero
	// AfterSYN: this side's previous segment was a SYN, whose window is
	// never scaled: a change of the window field is no change of room.
	AfterSYN
	// SYNAgain: a SYN+ACK from a side that sent a pure SYN with the same
	// ISN before (a simultaneous open, or a socket connected to itself).
	SYNAgain
	// AfterReset: an RST on a connection already reset: the kernel answers
	// a segment that was still on its way.
	AfterReset
	// SelfConnect: source and destination are the same address and port.
	SelfConnect
	// BothSentSYN: both sides sent a pure SYN (a simultaneous open).
	BothSentSYN
	// AckBeyondSeen: the ack covers bytes the capture never saw the other
	// side send (the capture missed them).
	AckBeyondSeen
	// ResendAfterTFOIgnored: data sent again because the server ignored it
	// in a Fast Open SYN; the first copy was not lost.
	ResendAfterTFOIgnored
)

// PreviewMax is how many payload bytes a Segment keeps for display.
const PreviewMax = 64

// Segment is one captured TCP segment, decoded and annotated. It is a value:
// nothing in it points into the capture's buffers.
type Segment struct {
	Time     time.Time
	Frame    uint64 // 1-based position in the capture, as tcpdump and tshark count
	Src, Dst netip.AddrPort
	Stream   uint64 // connection index in order of first sight, from 0 (tshark's tcp.stream)

	// FromClient is true when Src is the side that sent the SYN (or, when the
	// SYN was not captured, the side with the higher port: a guess).
	FromClient bool

	Flags Flags
	Kind  Kind
	Step  Step

	Seq, Ack       uint32 // relative, as Wireshark shows them; Ack is 0 without the ACK flag
	RawSeq, RawAck uint32 // as on the wire
	Len            int    // payload length, from the IP header
	Window         uint16 // the header's window field, unscaled
	WindowScale    int8   // the sender's window scale shift; -1 when unknown
	MSS            uint16 // the MSS option, when present (SYN segments)

	Analysis Analysis
	Facts    Facts

	// Cut says what of the header the snap length cut off; the numbers it
	// lists as unknown are 0.
	Cut Cut

	// AcksFIN: the ACK covers the other side's FIN, which takes one
	// sequence number but is no byte of data.
	AcksFIN bool

	preview    [PreviewMax]byte
	previewLen uint8
}

// Preview returns up to PreviewMax bytes of the payload, as captured. The
// bytes are the network's: escape them before they reach a terminal.
func (s *Segment) Preview() []byte { return s.preview[:s.previewLen] }

// ScaledWindow is the receive window the sender advertised, in bytes, when
// its scale is known (else the raw field).
func (s *Segment) ScaledWindow() uint64 {
	if s.WindowScale > 0 {
		return uint64(s.Window) << uint(s.WindowScale)
	}
	return uint64(s.Window)
}

// SeqEnd is the relative sequence number just past this segment's payload.
func (s *Segment) SeqEnd() uint32 { return s.Seq + uint32(s.Len) }
