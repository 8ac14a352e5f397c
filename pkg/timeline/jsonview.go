package timeline

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tcp-playground/playground/pkg/capture"
)

// JSONView renders one JSON object per line: the timeline for scripts and
// tests. Every source shares the fields time, source and kind.
type JSONView struct {
	w    *bufio.Writer
	enc  *json.Encoder
	line []byte // a program event's line, reused
}

// NewJSONView writes JSON lines to w.
func NewJSONView(w io.Writer) *JSONView {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &JSONView{w: bw, enc: enc}
}

// JSONEvent is the shape of one line. Wire-only fields are omitted for
// other sources.
type JSONEvent struct {
	Time      string   `json:"time"`   // RFC 3339 with nanoseconds
	Source    string   `json:"source"` // "wire"
	Kind      string   `json:"kind"`   // SYN, SYN+ACK, ACK, DATA, FIN, RST
	Flags     string   `json:"flags"`  // tcpdump's letters: "S", "S.", ".", "P.", "F.", "R."
	Src       string   `json:"src"`    // "ip:port", IPv6 in brackets
	Dst       string   `json:"dst"`
	Stream    *uint64  `json:"stream,omitempty"`     // connection index, as tshark's tcp.stream; absent when unknown (header cut)
	Frame     uint64   `json:"frame"`                // 1-based frame number in the capture
	From      string   `json:"from"`                 // "client" or "server"
	Seq       uint32   `json:"seq"`                  // relative
	Ack       uint32   `json:"ack"`                  // relative; 0 without the ACK flag
	Len       int      `json:"len"`                  // payload bytes
	Win       uint16   `json:"win"`                  // the window field as sent (unscaled)
	WinScaled *uint64  `json:"win_scaled,omitempty"` // in bytes, when the scale is known
	Step      string   `json:"step,omitempty"`       // "handshake 1/3"...
	Analysis  []string `json:"analysis,omitempty"`   // Wireshark's remarks
	Preview   string   `json:"preview,omitempty"`    // payload, escaped as in the log view
	Late      bool     `json:"late,omitempty"`       // shown out of time order: it arrived after the reorder window
	Cut       string   `json:"cut,omitempty"`        // what the snap length cut: "TCP options cut by the snap length"...
	Note      string   `json:"note"`                 // the plain-language explanation
}

// plainStyles escapes without color, for JSON.
var plainStyles = NewStyles(false)

// JSONProgramEvent is the shape of a server, client, kernel or process
// event's line.
type JSONProgramEvent struct {
	Time       string `json:"time"`
	Source     string `json:"source"`         // "server", "client", "kernel", "process" or "link"
	Kind       string `json:"kind"`           // listening, connection, data, write, close, error; dial, connected, write, read, half-close, close, abort, error; state, queue, cwnd; accept, connect, read, write, shutdown, close; dropped
	Side       string `json:"side,omitempty"` // kernel, process, link: "client" or "server"
	Stream     *int64 `json:"stream,omitempty"`
	Conn       uint64 `json:"conn,omitempty"` // the server's connection number
	Local      string `json:"local,omitempty"`
	Remote     string `json:"remote,omitempty"`
	RemoteNode string `json:"remote_node,omitempty"` // remoteAddress as Node prints it
	Family     string `json:"family,omitempty"`      // as Node's remoteFamily
	Len        int    `json:"len"`
	Preview    string `json:"preview,omitempty"`
	Detail     string `json:"detail,omitempty"`
	Error      string `json:"error,omitempty"`
	Late       bool   `json:"late,omitempty"`
	Note       string `json:"note"`

	// A kernel state change: Linux's state names, the owning process.
	Old        string `json:"old,omitempty"`
	New        string `json:"new,omitempty"`
	PID        uint32 `json:"pid,omitempty"`
	Comm       string `json:"comm,omitempty"`
	TimeLeftMS *int64 `json:"time_left_ms,omitempty"` // TIME_WAIT's timer
	// A process's shutdown(): SHUT_RD, SHUT_WR or SHUT_RDWR. (Its pid
	// and comm are the fields above.)
	How string `json:"how,omitempty"`
	// A kernel queue change: a listener's, or a connection's (bytes).
	AcceptQueue *uint32 `json:"accept_queue,omitempty"`
	Backlog     *uint32 `json:"backlog,omitempty"`
	RecvQueue   *uint32 `json:"recv_queue,omitempty"`
	SendQueue   *uint32 `json:"send_queue,omitempty"`
	Window      *uint32 `json:"window,omitempty"`
	// A congestion window change: in segments; ssthresh once a loss set it.
	Cwnd      *uint32 `json:"cwnd,omitempty"`
	Ssthresh  uint32  `json:"ssthresh,omitempty"`
	InFlight  *uint32 `json:"in_flight,omitempty"`
	RTTMicros *int64  `json:"rtt_us,omitempty"` // the sender's smoothed RTT
	Phase     string  `json:"phase,omitempty"`
	// The link's event: the packet's flags (its reason is in detail).
	Flags string `json:"flags,omitempty"`
}

// Render writes one event.
func (v *JSONView) Render(e Event) error {
	if e.Source == SourceWire {
		return v.enc.Encode(ToJSON(e))
	}
	j := ProgramToJSON(e)
	v.line = append(appendProgramJSON(v.line[:0], &j), '\n')
	_, err := v.w.Write(v.line)
	return err
}

// ProgramToJSON converts a server or client event to its JSON shape.
func ProgramToJSON(e Event) JSONProgramEvent {
	local, remote := e.Endpoints()
	j := JSONProgramEvent{
		Time:   e.Time.UTC().Format(time.RFC3339Nano),
		Source: e.Source.String(),
		Kind:   e.Kind(),
		Local:  addrString(local),
		Remote: addrString(remote),
		Len:    len(e.Payload()),
		Late:   e.Late,
		Note:   strings.TrimSpace(ProgramSummary(&e) + "; " + ProgramNote(&e)),
	}
	if e.Stream >= 0 {
		stream := e.Stream
		j.Stream = &stream
	}
	e.lane().fill(&j)
	if len(e.Payload()) > 0 {
		j.Preview = escapedPreview(e.Payload())
	}
	return j
}

// escapedPreview is the payload escaped as the log view shows it, without
// the quotes.
func escapedPreview(p []byte) string {
	quoted := AppendEscaped(nil, plainStyles, p, previewBytes, len(p))
	text := string(quoted)
	if i := strings.LastIndexByte(text, '"'); i > 0 {
		return text[1:i]
	}
	return text
}

// Flush writes out buffered lines.
func (v *JSONView) Flush() error { return v.w.Flush() }

// ToJSON converts an event to its JSON shape.
func ToJSON(e Event) JSONEvent {
	seg := &e.Segment
	j := JSONEvent{
		Time:     e.Time.UTC().Format(time.RFC3339Nano),
		Source:   e.Source.String(),
		Kind:     seg.Kind.String(),
		Flags:    seg.Flags.String(),
		Src:      seg.Src.String(),
		Dst:      seg.Dst.String(),
		Frame:    seg.Frame,
		From:     "server",
		Seq:      seg.Seq,
		Ack:      seg.Ack,
		Len:      seg.Len,
		Win:      seg.Window,
		Step:     seg.Step.String(),
		Analysis: seg.Analysis.Names(),
		Late:     e.Late,
		Note:     SegmentNote(seg),
	}
	if seg.Stream != capture.NoStream {
		stream := seg.Stream
		j.Stream = &stream
	}
	if seg.Kind == capture.KindCut {
		j.Flags = "?" // cut off
	}
	j.Cut = seg.Cut.String()
	if seg.FromClient {
		j.From = "client"
	}
	if seg.WindowScale >= 0 {
		w := seg.ScaledWindow()
		j.WinScaled = &w
	}
	if seg.Len > 0 {
		j.Preview = escapedPreview(seg.Preview())
	}
	return j
}

// appendProgramJSON appends j as encoding/json (without HTML escaping)
// writes it, field by field: a program, kernel or process event is a JSON
// line, and reflection made encoding them the largest cost of a busy
// process lane (TestAppendProgramJSON holds them to encoding/json's
// bytes).
func appendProgramJSON(b []byte, j *JSONProgramEvent) []byte {
	b = append(b, `{"time":`...)
	b = appendJSONString(b, j.Time)
	b = append(b, `,"source":`...)
	b = appendJSONString(b, j.Source)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, j.Kind)
	str := func(b []byte, key, s string) []byte {
		if s == "" {
			return b
		}
		return appendJSONString(append(append(b, key...), ':'), s)
	}
	u32 := func(b []byte, key string, n *uint32) []byte {
		if n == nil {
			return b
		}
		return strconv.AppendUint(append(append(b, key...), ':'), uint64(*n), 10)
	}
	b = str(b, `,"side"`, j.Side)
	if j.Stream != nil {
		b = strconv.AppendInt(append(b, `,"stream":`...), *j.Stream, 10)
	}
	if j.Conn != 0 {
		b = strconv.AppendUint(append(b, `,"conn":`...), j.Conn, 10)
	}
	b = str(b, `,"local"`, j.Local)
	b = str(b, `,"remote"`, j.Remote)
	b = str(b, `,"remote_node"`, j.RemoteNode)
	b = str(b, `,"family"`, j.Family)
	b = strconv.AppendInt(append(b, `,"len":`...), int64(j.Len), 10)
	b = str(b, `,"preview"`, j.Preview)
	b = str(b, `,"detail"`, j.Detail)
	b = str(b, `,"error"`, j.Error)
	if j.Late {
		b = append(b, `,"late":true`...)
	}
	b = append(b, `,"note":`...)
	b = appendJSONString(b, j.Note)
	b = str(b, `,"old"`, j.Old)
	b = str(b, `,"new"`, j.New)
	if j.PID != 0 {
		b = strconv.AppendUint(append(b, `,"pid":`...), uint64(j.PID), 10)
	}
	b = str(b, `,"comm"`, j.Comm)
	if j.TimeLeftMS != nil {
		b = strconv.AppendInt(append(b, `,"time_left_ms":`...), *j.TimeLeftMS, 10)
	}
	b = str(b, `,"how"`, j.How)
	b = u32(b, `,"accept_queue"`, j.AcceptQueue)
	b = u32(b, `,"backlog"`, j.Backlog)
	b = u32(b, `,"recv_queue"`, j.RecvQueue)
	b = u32(b, `,"send_queue"`, j.SendQueue)
	b = u32(b, `,"window"`, j.Window)
	b = u32(b, `,"cwnd"`, j.Cwnd)
	if j.Ssthresh != 0 {
		b = strconv.AppendUint(append(b, `,"ssthresh":`...), uint64(j.Ssthresh), 10)
	}
	b = u32(b, `,"in_flight"`, j.InFlight)
	if j.RTTMicros != nil {
		b = strconv.AppendInt(append(b, `,"rtt_us":`...), *j.RTTMicros, 10)
	}
	b = str(b, `,"phase"`, j.Phase)
	b = str(b, `,"flags"`, j.Flags)
	return append(b, '}')
}

// appendJSONString appends s quoted as encoding/json quotes it without
// HTML escaping: \" \\ \b \f \n \r \t, other control bytes as \u00XX,
// invalid UTF-8 as \ufffd, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
