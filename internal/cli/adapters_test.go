package cli

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/kernel"
	"github.com/tcp-playground/playground/pkg/lesson"
	"github.com/tcp-playground/playground/pkg/netlab"
	"github.com/tcp-playground/playground/pkg/server"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// These tests cover, without root, how the kernel's, the processes' and
// the lab link's typed events become timeline events.

var (
	clientEnd = netip.MustParseAddrPort("127.0.0.1:50000")
	serverEnd = netip.MustParseAddrPort("127.0.0.1:4000")
	mappedEnd = netip.MustParseAddrPort("[::ffff:127.0.0.1]:4000")
)

// TestStateEventsCarryTheirSide: a socket's side comes from the
// transitions only one side makes, and stays with it until it closes.
func TestStateEventsCarryTheirSide(t *testing.T) {
	sides := sockSides{}
	change := func(sock uint64, old, new kernel.State, local, remote netip.AddrPort) timeline.KernelEvent {
		e := stateEvent(kernel.StateChange{Time: time.Now(), Sock: sock, Old: old, New: new, Local: local, Remote: remote}, sides)
		return *e.Kernel
	}
	tests := []struct {
		got        timeline.KernelEvent
		side       timeline.Side
		old, new   string
		remoteSeen bool
	}{
		{change(1, kernel.Close, kernel.Listen, serverEnd, netip.MustParseAddrPort("0.0.0.0:0")), timeline.SideServer, "CLOSE", "LISTEN", false},
		{change(2, kernel.Close, kernel.SynSent, netip.MustParseAddrPort("127.0.0.1:0"), serverEnd), timeline.SideClient, "CLOSE", "SYN_SENT", true},
		{change(2, kernel.SynSent, kernel.Established, clientEnd, serverEnd), timeline.SideClient, "SYN_SENT", "ESTABLISHED", true},
		{change(3, kernel.Listen, kernel.SynRecv, mappedEnd, clientEnd), timeline.SideServer, "LISTEN", "SYN_RECV", true},
		{change(3, kernel.SynRecv, kernel.Established, mappedEnd, clientEnd), timeline.SideServer, "SYN_RECV", "ESTABLISHED", true},
		{change(3, kernel.Established, kernel.CloseWait, mappedEnd, clientEnd), timeline.SideServer, "ESTABLISHED", "CLOSE_WAIT", true},
		{change(2, kernel.Established, kernel.Close, clientEnd, serverEnd), timeline.SideClient, "ESTABLISHED", "CLOSE", true},
		{change(2, kernel.Established, kernel.FinWait1, clientEnd, serverEnd), timeline.SideUnknown, "ESTABLISHED", "FIN_WAIT1", true}, // closed, then reused
	}
	for i, tt := range tests {
		if tt.got.Side != tt.side || tt.got.Old != tt.old || tt.got.New != tt.new || tt.got.Remote.IsValid() != tt.remoteSeen {
			t.Errorf("%d: %+v, want side %v %s → %s", i, tt.got, tt.side, tt.old, tt.new)
		}
		if tt.got.Local.Addr().Is4In6() {
			t.Errorf("%d: local %v is not unmapped", i, tt.got.Local)
		}
	}
}

// TestQueueReporterShowsChanges: a queue line only when the numbers change
// from what was last shown, starting from empty.
func TestQueueReporterShowsChanges(t *testing.T) {
	var got []timeline.KernelEvent
	q := newQueueReporter(func(e timeline.Event) { got = append(got, *e.Kernel) })
	listener := kernel.Socket{State: kernel.Listen, Local: serverEnd, Remote: netip.MustParseAddrPort("0.0.0.0:0"), Backlog: 1}
	conn := kernel.Socket{State: kernel.Established, Local: serverEnd, Remote: clientEnd, Info: &kernel.TCPInfo{RcvWnd: 65483, HasRcvWnd: true}}
	now := time.Now()
	for _, s := range []struct {
		sock kernel.Socket
		gone bool
	}{
		{listener, false}, // backlog 1: shown
		{listener, false}, // unchanged: not shown
		{func() kernel.Socket { l := listener; l.AcceptQueue = 2; return l }(), false},
		{conn, false}, // empty queues: nothing to show
		{func() kernel.Socket {
			c := conn
			c.RecvQueue = 4096
			c.Info = &kernel.TCPInfo{RcvWnd: 0, HasRcvWnd: true}
			return c
		}(), false},
		{conn, true},
		{func() kernel.Socket { c := conn; c.RecvQueue = 4096; return c }(), false}, // back after gone: shown again
	} {
		q.report(kernel.QueueChange{Time: now, Socket: s.sock, Gone: s.gone})
	}
	if len(got) != 4 {
		t.Fatalf("%d queue lines, want 4: %+v", len(got), got)
	}
	if !got[0].Listener || got[0].Backlog != 1 || got[0].Side != timeline.SideServer || got[0].Remote.IsValid() {
		t.Errorf("listener line %+v", got[0])
	}
	if got[1].AcceptQueue != 2 || got[2].RecvQueue != 4096 || !got[2].HasWindow || got[2].Window != 0 {
		t.Errorf("lines %+v / %+v", got[1], got[2])
	}
}

// TestCallEvents: every kind of socket call keeps its kind and numbers.
func TestCallEvents(t *testing.T) {
	kinds := map[kernel.CallKind]string{
		kernel.CallAccept: "accept", kernel.CallConnect: "connect", kernel.CallRead: "read",
		kernel.CallWrite: "write", kernel.CallShutdown: "shutdown", kernel.CallClose: "close",
	}
	for k, name := range kinds {
		e := callEvent(kernel.Call{Time: time.Now(), Kind: k, PID: 42, Comm: "node", Local: mappedEnd, Remote: clientEnd, Len: 5, Preview: []byte("hello")})
		if e.Source != timeline.SourceProcess || e.Kind() != name || e.Process.PID != 42 || e.Process.Local != serverEnd || e.PayloadLen() != 5 {
			t.Errorf("%s: %+v", name, e.Process)
		}
	}
}

// TestLinkFeed: the link's events reach the timeline through a bounded
// queue, which counts what it could not take instead of waiting.
func TestLinkFeed(t *testing.T) {
	f := newLinkFeed()
	drop := netlab.Event{Time: time.Now(), Direction: netlab.ClientToServer, Kind: netlab.Dropped, Cause: netlab.ByRule, Rule: 0, RuleName: "drop every SYN",
		Packet: netlab.Packet{Protocol: 6, Src: clientEnd, Dst: serverEnd, Flags: netlab.TCPFlags(0x02)}}
	for range linkQueue + 5 {
		f.emit(drop)
	}
	var mu sync.Mutex
	var got []timeline.Event
	f.start(func(_ context.Context, e timeline.Event) { mu.Lock(); got = append(got, e); mu.Unlock() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == linkQueue || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if lost := f.stop(); lost != 5 || len(got) != linkQueue {
		t.Fatalf("%d events, %d lost; want %d and 5", len(got), lost, linkQueue)
	}
	e := got[0]
	if e.Source != timeline.SourceLink || e.Side() != timeline.SideClient || !strings.Contains(timeline.ProgramNote(&e)+timeline.ProgramSummary(&e), "drop every SYN") {
		t.Errorf("link event %+v: %q %q", e.Link, timeline.ProgramSummary(&e), timeline.ProgramNote(&e))
	}
}

// TestCwndPhases: the congestion control's state by its name, and which
// changes of the window are worth a line.
func TestCwndPhases(t *testing.T) {
	for _, tt := range []struct {
		info kernel.TCPInfo
		want string
	}{
		{kernel.TCPInfo{SndCwnd: 10, SndSsthresh: 1 << 30}, timeline.PhaseSlowStart},
		{kernel.TCPInfo{SndCwnd: 40, SndSsthresh: 20}, timeline.PhaseAvoidance},
		{kernel.TCPInfo{CAState: kernel.CARecovery}, timeline.PhaseRecovery},
		{kernel.TCPInfo{CAState: kernel.CALoss}, timeline.PhaseLoss},
		{kernel.TCPInfo{CAState: kernel.CADisorder}, timeline.PhaseDisorder},
		{kernel.TCPInfo{CAState: kernel.CACWR}, timeline.PhaseReduce},
	} {
		if got := cwndPhase(&tt.info); got != tt.want {
			t.Errorf("%+v: %s, want %s", tt.info, got, tt.want)
		}
	}
	base := cwndSeen{cwnd: 20, phase: timeline.PhaseSlowStart}
	for _, tt := range []struct {
		now  cwndSeen
		news bool
	}{
		{cwndSeen{cwnd: 21, phase: timeline.PhaseSlowStart}, false},
		{cwndSeen{cwnd: 25, phase: timeline.PhaseSlowStart}, true},
		{cwndSeen{cwnd: 19, phase: timeline.PhaseSlowStart}, true},
		{cwndSeen{cwnd: 20, phase: timeline.PhaseRecovery}, true},
	} {
		if got := cwndNews(base, tt.now); got != tt.news {
			t.Errorf("%+v after %+v: news %v, want %v", tt.now, base, got, tt.news)
		}
	}
}

// TestSessionSaysWhatIsMissing: a session without the kernel lane says why
// its kernel and process checks can't be checked, and its summary on stop.
func TestSessionSaysWhatIsMissing(t *testing.T) {
	screen := timeline.NewAsyncView(timeline.NewLogView(io.Discard, timeline.NewStyles(false), time.Time{}), 16)
	s := startSession(nil, screen)
	s.kernelOff = "no BPF here"
	var _ lesson.LaneReporter = s
	if got := s.Unavailable(timeline.SourceKernel); got != "no BPF here" {
		t.Errorf("kernel: %q", got)
	}
	if got := s.Unavailable(timeline.SourceWire); got != "" {
		t.Errorf("wire: %q", got)
	}
	var errOut strings.Builder
	if err := s.Stop(Env{Stderr: &errOut}, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "0 segments captured, 0 dropped by the kernel") {
		t.Errorf("summary %q", errOut.String())
	}
	l, err := lesson.Parse("l.md", []byte("---\nlesson: 1\ntitle: T\nport: 4100\n---\n## S\n```js\nx\n```\n```go\ny\n```\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ports, filter := lessonPorts(l), lessonFilter(l); len(ports) != 2 || ports[1] != 4101 || filter != "tcp port 4100 or tcp port 4101" {
		t.Errorf("ports %v, filter %q", ports, filter)
	}
}

// TestOutputFilesWithoutRoot: --html and --write files are made, fed and
// finished without any capture privilege; tshark reads the pcap back in
// the tests that have a live capture.
func TestOutputFilesWithoutRoot(t *testing.T) {
	dir := t.TempDir()
	out := &outputFlags{html: dir + "/s.html", write: dir + "/s.pcap"}
	f, err := out.openFiles(1, "title") // 1: Ethernet
	if err != nil {
		t.Fatal(err)
	}
	var pending pendingFiles
	pending.set(f)
	frame := make([]byte, 60)
	if err := pending.Frame(frame, len(frame), time.Now()); err != nil {
		t.Fatal(err)
	}
	e := timeline.ServerEvent(serverEvent())
	if err := errors.Join(pending.Render(e), pending.Flush(), pending.Close()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"s.html", "s.pcap"} {
		if info, err := os.Stat(dir + "/" + name); err != nil || info.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := (&outputFlags{html: dir + "/no/such/dir.html"}).openFiles(1, "t"); err == nil || !strings.Contains(err.Error(), "--html") {
		t.Errorf("an --html file that can't be made: %v", err)
	}
}

func serverEvent() server.Event {
	return server.Event{Time: time.Now(), Kind: server.Listening, Local: serverEnd}
}

// TestScreens: each --view and --json gives its view, and the flags that
// can't go together say so.
func TestScreens(t *testing.T) {
	env := Env{Stdout: io.Discard, Stderr: io.Discard}
	for _, o := range []outputFlags{{view: "log"}, {view: "ladder"}, {view: "log", json: true}} {
		screen := newScreen(env, &o)
		screen.Render(timeline.ServerEvent(serverEvent()))
		if err := screen.Close(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for _, o := range []outputFlags{{view: "tree"}, {view: "ladder", json: true}} {
		if err := o.check(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	before := runtime.GOMAXPROCS(0)
	reserveProcs()
	if runtime.GOMAXPROCS(0) < runtime.NumCPU()+2 {
		t.Errorf("GOMAXPROCS %d after reserveProcs", runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(before)
}
