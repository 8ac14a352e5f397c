package timeline

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"time"
)

// JSONView renders one JSON object per line: the timeline for scripts and
// tests. Every source shares the fields time, source and kind.
type JSONView struct {
	w   *bufio.Writer
	enc *json.Encoder
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
	Stream    uint64   `json:"stream"`               // connection index, as tshark's tcp.stream
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
	Note      string   `json:"note"`                 // the plain-language explanation
}

// plainStyles escapes without color, for JSON.
var plainStyles = NewStyles(false)

// JSONProgramEvent is the shape of a server, client, kernel or process
// event's line.
type JSONProgramEvent struct {
	Time       string `json:"time"`
	Source     string `json:"source"`         // "server", "client", "kernel" or "process"
	Kind       string `json:"kind"`           // listening, connection, data, write, close, error; dial, connected, write, read, half-close, close, abort, error; state, queue; accept, connect, read, write, shutdown, close
	Side       string `json:"side,omitempty"` // kernel, process: "client" or "server"
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
}

// Render writes one event.
func (v *JSONView) Render(e Event) error {
	if e.Source == SourceWire {
		return v.enc.Encode(ToJSON(e))
	}
	return v.enc.Encode(ProgramToJSON(e))
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
		Stream:   seg.Stream,
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
