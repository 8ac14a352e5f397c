package timeline

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tcp-playground/playground/pkg/capture"
)

// processWrite is node's write of the notes' reply on the server's end of
// the first connection of nc-hello-loop.pcap.
func processWrite(t *testing.T, wire []Event) Event {
	t.Helper()
	syn := wire[0].Segment
	if syn.Kind != capture.KindSYN {
		t.Fatalf("first segment %v, want SYN", syn.Kind)
	}
	return ProcessEventOf(ProcessEvent{Time: syn.Time.Add(time.Millisecond), Kind: ProcessWrite,
		PID: 4242, Comm: "node", Local: syn.Dst, Remote: syn.Src,
		Len: 17, Preview: []byte("Hello from server")})
}

func TestProcessEventLinkedToItsConnection(t *testing.T) {
	wire := wireEvents(t, "nc-hello-loop.pcap")
	l := NewLinker()
	l.Link(&wire[0])
	e := processWrite(t, wire)
	l.Link(&e)
	if e.Side() != SideServer || e.Stream != wire[0].Stream {
		t.Errorf("side %v stream %d, want server and %d", e.Side(), e.Stream, wire[0].Stream)
	}

	// An accept whose connection the wire has not shown is the server's.
	accept := ProcessEventOf(ProcessEvent{Kind: ProcessAccept})
	l.Link(&accept)
	if accept.Side() != SideServer {
		t.Errorf("unlinked accept: side %v, want server", accept.Side())
	}
}

func TestProcessEventJSON(t *testing.T) {
	wire := wireEvents(t, "nc-hello-loop.pcap")
	e := processWrite(t, wire)
	NewLinker().Link(&wire[0])
	var buf bytes.Buffer
	v := NewJSONView(&buf)
	if err := v.Render(e); err != nil {
		t.Fatal(err)
	}
	v.Flush()
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"source": "process", "kind": "write", "pid": 4242.0, "comm": "node",
		"len": 17.0, "preview": "Hello from server",
		"local": wire[0].Segment.Dst.String(), "remote": wire[0].Segment.Src.String()}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v (line %s)", k, got[k], w, buf.String())
		}
	}
	if note, _ := got["note"].(string); !strings.Contains(note, "socket.write()") {
		t.Errorf("note %q does not name Node's socket.write()", note)
	}
}

func TestProcessEventLogLine(t *testing.T) {
	wire := wireEvents(t, "nc-hello-loop.pcap")
	read := ProcessEventOf(ProcessEvent{Time: wire[0].Time, Kind: ProcessRead, PID: 4242, Comm: "node",
		Local: wire[0].Segment.Dst, Remote: wire[0].Segment.Src, Len: 100, Preview: []byte("GET / HTTP/1.1\r\n")})
	end := ProcessEventOf(ProcessEvent{Time: wire[0].Time, Kind: ProcessRead, PID: 7, Comm: "python3"})
	var buf bytes.Buffer
	v := NewLogView(&buf, NewStyles(false), wire[0].Time)
	renderAll(t, v, []Event{read, end})
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for _, want := range []string{"node[4242]", "read", "100 bytes", `"GET / HTTP/1.1\r\n"`, "+84 bytes", "'data' event"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line %q lacks %q", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "python3[7]") || !strings.Contains(lines[1], "end of stream") || strings.Contains(lines[1], "Node") {
		t.Errorf("python's end of stream: %q", lines[1])
	}
}

// TestAppendProgramJSON holds the hand-written encoder to encoding/json's
// bytes, for every field set and unset and strings with every byte.
func TestAppendProgramJSON(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	strs := []string{"", "plain", string(all), "\u2028\u2029 <&> é 🙂", "\xff\xfe bad utf-8 \xc3", `"quoted" \back\`}
	n64, n32 := int64(-42), uint32(7)
	for i := range 64 {
		s := func(k int) string { return strs[(i+k)%len(strs)] }
		j := JSONProgramEvent{Time: s(0), Source: s(1), Kind: s(2), Side: s(3), Local: s(4), Remote: s(5),
			RemoteNode: s(6), Family: s(7), Len: i * 1000, Preview: s(8), Detail: s(9), Error: s(10),
			Late: i%2 == 0, Note: s(11), Old: s(12), New: s(13), PID: uint32(i % 3), Comm: s(14), How: s(15)}
		if i%3 == 0 {
			j.Stream, j.Conn, j.TimeLeftMS = &n64, uint64(i), &n64
			j.AcceptQueue, j.Backlog, j.RecvQueue, j.SendQueue, j.Window = &n32, &n32, &n32, &n32, &n32
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(j); err != nil {
			t.Fatal(err)
		}
		got := string(appendProgramJSON(nil, &j)) + "\n"
		if got != want.String() {
			t.Fatalf("event %d:\n got  %s\n want %s", i, got, want.String())
		}
	}
}

// TestProcessEventsFit: on an 80-column terminal, the log and ladder
// views keep a process's calls within the width, its name included.
func TestProcessEventsFit(t *testing.T) {
	wire := wireEvents(t, "nc-hello-loop.pcap")
	syn := wire[0].Segment
	l := NewLinker()
	events := []Event{wire[0]}
	for _, p := range []ProcessEvent{
		{Kind: ProcessAccept, Comm: "node", PID: 4194304, Local: syn.Dst, Remote: syn.Src},
		{Kind: ProcessRead, Comm: "node", PID: 4194304, Local: syn.Dst, Remote: syn.Src, Len: 70000, Preview: bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 4)},
		{Kind: ProcessWrite, Comm: "a-long-comm-name", PID: 4194304, Local: syn.Src, Remote: syn.Dst, Len: 17, Preview: []byte("Hello from server")},
		{Kind: ProcessShutdown, Comm: "python3", PID: 12, Local: syn.Src, Remote: syn.Dst, How: "SHUT_WR"},
		{Kind: ProcessClose, Comm: "node", PID: 4194304, Local: syn.Dst, Remote: syn.Src},
	} {
		p.Time = syn.Time.Add(time.Millisecond)
		events = append(events, ProcessEventOf(p))
	}
	for i := range events {
		l.Link(&events[i])
	}
	var logOut bytes.Buffer
	v := NewLogView(&logOut, NewStyles(false), syn.Time)
	v.SetWidth(80)
	renderAll(t, v, events)
	ladder := renderLadder(t, NewStyles(false), 80, events)
	for name, out := range map[string]string{"log": logOut.String(), "ladder": ladder} {
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if n := utf8.RuneCountInString(line); n > 80 {
				t.Errorf("%s view: %d cells: %q", name, n, line)
			}
		}
		if !strings.Contains(out, "node[4194304]") {
			t.Errorf("%s view does not name the process:\n%s", name, out)
		}
	}
}

// TestAppendProgramJSONHasEveryField: every field of JSONProgramEvent, set,
// comes out as encoding/json writes it, so a field added to the struct
// and not to appendProgramJSON fails here.
func TestAppendProgramJSONHasEveryField(t *testing.T) {
	var j JSONProgramEvent
	v := reflect.ValueOf(&j).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			switch p.Elem().Kind() {
			case reflect.Int64:
				p.Elem().SetInt(int64(i + 1))
			default:
				p.Elem().SetUint(uint64(i + 1))
			}
			f.Set(p)
		default:
			t.Fatalf("field %s of kind %s: teach this test to set it", v.Type().Field(i).Name, f.Kind())
		}
	}
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		t.Fatal(err)
	}
	if got := string(appendProgramJSON(nil, &j)) + "\n"; got != want.String() {
		t.Errorf("\n got  %s\n want %s", got, want.String())
	}
}
