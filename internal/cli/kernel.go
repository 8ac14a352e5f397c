package cli

import (
	"context"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/tcp-playground/playground/pkg/kernel"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// queuePoll is how often a lesson's kernel lane asks sock_diag for the
// queues: fast enough to see an accept queue fill, one cheap netlink dump
// filtered by port in the kernel.
const queuePoll = 20 * time.Millisecond

// kernelLane feeds the kernel's side of the sockets to a session: state
// changes from the tracepoint (TIME_WAIT confirmed by sock_diag), and,
// when asked, the queues' changes polled from sock_diag.
type kernelLane struct {
	tracer *kernel.Tracer
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// The process lane rides with it: every other program's socket
	// calls on the same ports (nil when it could not open; processOff
	// says why, or which calls it misses).
	calls      *kernel.Calls
	processOff string
	callsLost  uint64
}

// openKernelLane loads the BPF program for the ports (all ports when none
// are given), and with process the process lane's. Call it as root; it
// keeps working after root is dropped.
func openKernelLane(ports []uint16, process bool) (*kernelLane, error) {
	tracer, err := kernel.Open(kernel.Options{Ports: ports, AllPorts: len(ports) == 0})
	if err != nil {
		return nil, err
	}
	k := &kernelLane{tracer: tracer}
	if process {
		k.openProcessLane(ports)
	}
	// Loading parsed the kernel's BTF (a 6 MB mapping and the types read
	// from it) for one offset: give that memory back now, once, rather
	// than carry it through the session (serve idles at 35 MiB instead of
	// 51 MiB).
	debug.FreeOSMemory()
	return k, nil
}

// start sends the lane's events to add until stop; with queues, it also
// polls the ports' queues.
func (k *kernelLane) start(ports []uint16, queues bool, add func(timeline.Event)) {
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		sides := sockSides{}
		k.tracer.Run(ctx, func(c kernel.StateChange) { add(stateEvent(c, sides)) })
	}()
	if k.calls != nil {
		k.wg.Go(func() { k.calls.Run(ctx, func(c kernel.Call) { add(callEvent(c)) }) })
	}
	if queues {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			kernel.WatchQueues(ctx, kernel.Filter{Ports: ports}, queuePoll, newQueueReporter(add).report)
		}()
	}
}

// stop ends the lane and says how many events the ring buffer lost.
func (k *kernelLane) stop() (lost uint64) {
	if k.cancel != nil {
		k.cancel()
	}
	k.wg.Wait()
	lost = k.tracer.Lost()
	k.tracer.Close()
	if k.calls != nil {
		k.callsLost = k.calls.Lost()
		k.calls.Close()
	}
	return lost
}

// sockSides remembers each socket's side from the transitions only one
// side makes (SYN_SENT: the client; SYN_RECV: the server), so that its
// later transitions carry it even when the wire's segments reach the
// timeline after them (a busy machine).
type sockSides map[uint64]timeline.Side

func (s sockSides) of(c kernel.StateChange) timeline.Side {
	switch {
	case c.Old == kernel.SynSent || c.New == kernel.SynSent:
		s[c.Sock] = timeline.SideClient
	case c.Old == kernel.SynRecv || c.New == kernel.SynRecv || c.New == kernel.Listen:
		s[c.Sock] = timeline.SideServer
	}
	side := s[c.Sock]
	if c.New == kernel.Close {
		delete(s, c.Sock) // the kernel may reuse the socket's address
	}
	return side
}

// openProcessLane loads the BPF programs of the socket calls on the ports
// (all ports when none are given), leaving out the playground's own: its
// server and client report their events themselves, on their own lanes.
// Where they can't load, or miss some calls, processOff says so.
func (k *kernelLane) openProcessLane(ports []uint16) {
	calls, err := kernel.OpenCalls(kernel.Options{Ports: ports, AllPorts: len(ports) == 0, ExcludePID: uint32(os.Getpid())})
	if err != nil {
		k.processOff = "process lane off (" + err.Error() + "): the other lanes go on"
		return
	}
	k.calls = calls
	if err := calls.Missing(); err != nil {
		k.processOff = "process lane: " + err.Error()
	}
}

// processUnavailable says why the session can't see processes' socket
// calls ("" when it can).
func (s *liveSession) processUnavailable() string {
	switch {
	case s.kernel == nil && s.kernelOff == "":
		return "the process lane is off (--no-kernel)"
	case s.kernel == nil:
		return s.kernelOff
	case s.kernel.calls == nil && s.kernel.processOff == "":
		return "the process lane is off (--no-process)"
	case s.kernel.calls == nil:
		return s.kernel.processOff
	}
	return ""
}

// callEvent turns a process's socket call into a timeline event.
func callEvent(c kernel.Call) timeline.Event {
	p := timeline.ProcessEvent{Time: c.Time, PID: c.PID, Comm: c.Comm,
		Local: unmap(c.Local), Remote: peer(c.Remote), Len: c.Len, Preview: c.Preview, How: c.How.String()}
	switch c.Kind {
	case kernel.CallAccept:
		p.Kind = timeline.ProcessAccept
	case kernel.CallConnect:
		p.Kind = timeline.ProcessConnect
	case kernel.CallRead:
		p.Kind = timeline.ProcessRead
	case kernel.CallWrite:
		p.Kind = timeline.ProcessWrite
	case kernel.CallShutdown:
		p.Kind = timeline.ProcessShutdown
	case kernel.CallClose:
		p.Kind = timeline.ProcessClose
	}
	if c.Err != 0 {
		p.Err = c.Err.Error()
	}
	return timeline.ProcessEventOf(p)
}

// stateEvent turns a state change into a timeline event; a FIN_WAIT2 →
// CLOSE that left a TIME_WAIT socket behind is shown as what it is.
func stateEvent(c kernel.StateChange, sides sockSides) timeline.Event {
	e := timeline.KernelEvent{Time: c.Time, Kind: timeline.KernelState, Side: sides.of(c),
		Local: unmap(c.Local), Remote: peer(c.Remote),
		Old: c.Old.String(), New: c.New.String(), PID: c.PID, Comm: c.Comm}
	if c.MaybeTimeWait() {
		if s, ok, err := kernel.TimeWaitOf(c); err == nil && ok {
			e.New, e.TimeLeft = kernel.TimeWait.String(), s.TimerLeft
		}
	}
	return timeline.KernelEventOf(e)
}

// queueReporter shows a socket's queues when they change from what was
// last shown, starting from empty: a connection whose queues stay empty
// says nothing, and state changes are the tracer's to show.
type queueReporter struct {
	add   func(timeline.Event)
	shown map[netip.AddrPort]map[netip.AddrPort]queueSnapshot
}

type queueSnapshot struct {
	accept, backlog, recv, send uint32
	zeroWindow                  bool
}

func newQueueReporter(add func(timeline.Event)) *queueReporter {
	return &queueReporter{add: add, shown: map[netip.AddrPort]map[netip.AddrPort]queueSnapshot{}}
}

func (q *queueReporter) report(c kernel.QueueChange) {
	s := c.Socket
	local, remote := unmap(s.Local), peer(s.Remote)
	byRemote := q.shown[local]
	if c.Gone {
		delete(byRemote, remote)
		if len(byRemote) == 0 {
			delete(q.shown, local)
		}
		return
	}
	listener := s.State == kernel.Listen
	snap := queueSnapshot{recv: s.RecvQueue, send: s.SendQueue}
	if listener {
		snap = queueSnapshot{accept: s.AcceptQueue, backlog: s.Backlog}
	}
	window, hasWindow := uint32(0), false
	if s.Info != nil && s.Info.HasRcvWnd && !listener {
		window, hasWindow = s.Info.RcvWnd, true
		snap.zeroWindow = window == 0 && s.State == kernel.Established
	}
	before := byRemote[remote]
	if before == snap {
		return
	}
	if byRemote == nil {
		byRemote = map[netip.AddrPort]queueSnapshot{}
		q.shown[local] = byRemote
	}
	byRemote[remote] = snap
	e := timeline.KernelEvent{Time: c.Time, Kind: timeline.KernelQueue, Local: local, Remote: remote,
		Listener: listener, AcceptQueue: s.AcceptQueue, Backlog: s.Backlog,
		RecvQueue: s.RecvQueue, SendQueue: s.SendQueue, Window: window, HasWindow: hasWindow}
	if listener {
		e.Side = timeline.SideServer
	}
	q.add(timeline.KernelEventOf(e))
}

// unmap writes an IPv4-mapped address as plain IPv4, as on the wire.
func unmap(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() {
		return a
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// peer is a socket's remote address, or none for a listener (0.0.0.0:0).
func peer(a netip.AddrPort) netip.AddrPort {
	if a.Port() == 0 && (!a.IsValid() || a.Addr().IsUnspecified()) {
		return netip.AddrPort{}
	}
	return unmap(a)
}
