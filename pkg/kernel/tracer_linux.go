//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// eventProcessContext is the record flag bpf/tcpstates.c sets for a change
// made in process context.
const eventProcessContext = 1

const (
	afInet  = 2
	afInet6 = 10
)

// Tracer reports TCP state changes from the tracepoint
// sock:inet_sock_set_state. Open it as root; it keeps working after the
// process drops its privileges.
type Tracer struct {
	objs   tcpstatesObjects
	link   link.Link
	reader *ringbuf.Reader
	clock  *kernelClock

	mu      sync.Mutex
	closed  bool
	runDone chan struct{} // closed when the Run in progress returns; nil when none runs
	lost    uint64        // Lost at Close, for calls after it

	closeErr error
}

// Open loads the BPF program, attaches it to the tracepoint and opens its
// ring buffer. Events are recorded from now on; Run delivers them.
func Open(opts Options) (*Tracer, error) {
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return nil, classify(err, "probing for BPF ring buffers", "BPF ring buffers (Linux 5.8 or later)")
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classify(err, "raising RLIMIT_MEMLOCK for BPF maps", "BPF")
	}

	spec, err := loadTcpstates()
	if err != nil {
		return nil, fmt.Errorf("kernel socket states: %w", err)
	}
	useTAI := !opts.monotonicClock && features.HaveProgramHelper(ebpf.TracePoint, asm.FnKtimeGetTaiNs) == nil
	var ownedOffset uint32
	if !opts.withoutBTF {
		ownedOffset = sockLockOwnedOffset()
	}
	constants := map[string]any{
		tcpstatesVarUseTai:            boolByte(useTAI),
		tcpstatesVarWatchAllPorts:     boolByte(opts.AllPorts),
		tcpstatesVarSkLockOwnedOffset: ownedOffset,
	}
	for name, value := range constants {
		if err := spec.Variables[name].Set(value); err != nil {
			return nil, fmt.Errorf("kernel socket states: setting %s: %w", name, err)
		}
	}

	if opts.ringBufferSize == 0 {
		opts.ringBufferSize = defaultRingBuffer
	}
	spec.Maps[tcpstatesMapEvents].MaxEntries = opts.ringBufferSize

	t := &Tracer{}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		return nil, classify(err, "loading the BPF program", "BPF tracepoint programs")
	}
	if err := t.setPorts(opts.Ports); err != nil {
		t.objs.Close()
		return nil, err
	}
	if t.clock, err = newKernelClock(useTAI); err != nil {
		t.objs.Close()
		return nil, fmt.Errorf("kernel socket states: reading the clocks: %w", err)
	}
	err = withTracefs(func() error {
		var err error
		t.link, err = link.Tracepoint("sock", "inet_sock_set_state", t.objs.HandleSetState, nil)
		return err
	})
	if err != nil {
		t.objs.Close()
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no tracepoint sock:inet_sock_set_state (Linux 4.16 or later has it)", ErrUnsupported)
		}
		return nil, classify(err, "attaching to tracepoint sock:inet_sock_set_state", "BPF on tracepoints")
	}
	if t.reader, err = ringbuf.NewReader(t.objs.Events); err != nil {
		t.link.Close()
		t.objs.Close()
		return nil, classify(err, "opening the BPF ring buffer", "BPF ring buffers (Linux 5.8 or later)")
	}
	return t, nil
}

// classify wraps err in ErrPermission or ErrUnsupported where it is one,
// saying what was being done, or what the kernel lacks.
func classify(err error, doing, needs string) error {
	switch {
	case errors.Is(err, ErrPermission), errors.Is(err, ErrUnsupported):
		return err
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %s: %w", ErrPermission, doing, err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%w: the kernel lacks %s: %w", ErrUnsupported, needs, err)
	}
	return fmt.Errorf("kernel socket states: %s: %w", doing, err)
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// sockLockOwnedOffset finds the offset of sk_lock.owned in struct sock in
// the kernel's BTF, or 0 where the kernel has no BTF: the BPF program then
// guesses the context from the state (see in_process_context).
func sockLockOwnedOffset() uint32 {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return 0
	}
	var sock *btf.Struct
	if err := spec.TypeByName("sock", &sock); err != nil {
		return 0
	}
	lock, ok := member(sock, "sk_lock")
	if !ok {
		return 0
	}
	lockType, ok := btf.UnderlyingType(lock.Type).(*btf.Struct)
	if !ok {
		return 0
	}
	owned, ok := member(lockType, "owned")
	if !ok || owned.BitfieldSize != 0 {
		return 0
	}
	if size, err := btf.Sizeof(owned.Type); err != nil || size != 4 {
		return 0
	}
	return lock.Offset.Bytes() + owned.Offset.Bytes()
}

func member(s *btf.Struct, name string) (btf.Member, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return btf.Member{}, false
}

// SetPorts replaces the set of watched ports. It works after the process
// dropped its privileges (it writes memory shared with the BPF program).
func (t *Tracer) SetPorts(ports []uint16) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	return t.setPorts(ports)
}

func (t *Tracer) setPorts(ports []uint16) error {
	return writePorts(t.objs.WatchedPorts, ports, "kernel socket states")
}

// Lost returns how many state changes the kernel dropped because the ring
// buffer was full (Run's callback was too slow for a burst).
func (t *Tracer) Lost() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.lost
	}
	return t.readLost()
}

func (t *Tracer) readLost() uint64 { return readCounter(t.objs.LostEvents) }

// Run calls handle with each state change, in the order the kernel recorded
// them, until ctx is done (it returns nil) or the Tracer is closed (it
// returns ErrClosed). One Run at a time. Changes recorded on different CPUs
// may be up to a few microseconds out of timestamp order: merge by Time.
// While handle runs, the kernel keeps recording into a 1 MiB ring buffer
// (about 11,000 changes); past that it drops them and counts them in Lost.
func (t *Tracer) Run(ctx context.Context, handle func(StateChange)) error {
	t.mu.Lock()
	switch {
	case t.closed:
		t.mu.Unlock()
		return ErrClosed
	case t.runDone != nil:
		t.mu.Unlock()
		// The ring buffer has one consumer.
		return errors.New("kernel socket states: Run is already running")
	}
	done := make(chan struct{})
	t.runDone = done
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.runDone = nil
		t.mu.Unlock()
		close(done)
	}()

	return readRing(ctx, t.reader, 0, "kernel socket states", func(raw []byte) {
		if change, ok := t.decode(raw); ok {
			handle(change)
		}
	})
}

// decode turns a ring-buffer record into a StateChange.
func (t *Tracer) decode(raw []byte) (StateChange, bool) {
	var e tcpstatesEvent
	if len(raw) < int(unsafe.Sizeof(e)) {
		return StateChange{}, false
	}
	// tcpstatesEvent is the C struct's twin (bpf2go, structs.HostLayout,
	// no pointers): copy the bytes over it.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&e)), unsafe.Sizeof(e)), raw)

	c := StateChange{
		Time:           t.clock.realtime(e.TimeNs),
		Sock:           e.Skaddr,
		Old:            State(e.Oldstate),
		New:            State(e.Newstate),
		ProcessContext: e.Flags&eventProcessContext != 0,
		PID:            e.Pid,
		Comm:           commString(e.Comm),
	}
	switch e.Family {
	case afInet:
		c.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(e.Saddr[:4])), e.Sport)
		c.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(e.Daddr[:4])), e.Dport)
	case afInet6:
		c.Local = netip.AddrPortFrom(netip.AddrFrom16(e.Saddr), e.Sport)
		c.Remote = netip.AddrPortFrom(netip.AddrFrom16(e.Daddr), e.Dport)
	default:
		return StateChange{}, false
	}
	return c, true
}

func commString(comm [16]int8) string {
	b := make([]byte, 0, len(comm))
	for _, c := range comm {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// Close detaches the program and frees its maps, after waiting for a Run in
// progress to return (it returns ErrClosed).
func (t *Tracer) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return t.closeErr
	}
	t.closed = true
	running := t.runDone
	t.mu.Unlock()

	// Closing the reader interrupts Run's read.
	errs := []error{t.reader.Close()}
	if running != nil {
		<-running
	}
	lost := t.readLost()
	errs = append(errs, t.link.Close(), t.objs.Close())

	t.mu.Lock()
	t.lost = lost
	t.closeErr = errors.Join(errs...)
	t.mu.Unlock()
	return t.closeErr
}
