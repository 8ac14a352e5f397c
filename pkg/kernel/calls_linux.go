//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// Calls reports the socket calls of every process on the watched TCP
// ports (bpf/tcpcalls.c). Open it as root with OpenCalls; it keeps working
// after the process drops its privileges.
type Calls struct {
	coll    *ebpf.Collection
	links   []link.Link
	reader  *ringbuf.Reader
	clock   *kernelClock
	ports   *ebpf.Variable
	lostVar *ebpf.Variable
	missing error

	mu      sync.Mutex
	closed  bool
	runDone chan struct{}
	lost    uint64

	closeErr error
}

// callHooks are the kernel functions the programs attach to, by the call
// they report, in the order Missing names them.
var callHooks = []struct {
	call     CallKind
	function string
	programs []string // entry and exit
}{
	{CallAccept, "inet_csk_accept", []string{tcpcallsProgTraceAccept}},
	{CallConnect, "tcp_v4_connect", []string{tcpcallsProgTraceConnect4, tcpcallsProgTraceConnect4Exit}},
	{CallConnect, "tcp_v6_connect", []string{tcpcallsProgTraceConnect6, tcpcallsProgTraceConnect6Exit}},
	{CallRead, "tcp_recvmsg", []string{tcpcallsProgTraceRead, tcpcallsProgTraceReadExit}},
	{CallWrite, "tcp_sendmsg", []string{tcpcallsProgTraceWrite, tcpcallsProgTraceWriteExit}},
	{CallShutdown, "tcp_shutdown", []string{tcpcallsProgTraceShutdown}},
	{CallClose, "tcp_close", []string{tcpcallsProgTraceClose}},
}

// OpenCalls loads the BPF programs of the socket calls, attaches them to
// the kernel's TCP functions and opens their ring buffer. Calls are
// recorded from now on; Run delivers them. Where some functions can't be
// traced (missing from this kernel, or not traceable), the others still
// are: Missing says which calls are not seen. Where none can, it returns
// an error wrapping ErrUnsupported or ErrPermission.
func OpenCalls(opts Options) (*Calls, error) {
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return nil, classifyCalls(err, "probing for BPF ring buffers", "BPF ring buffers (Linux 5.8 or later)")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classifyCalls(err, "raising RLIMIT_MEMLOCK for BPF maps", "BPF")
	}
	kernelBTF, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("%w: process socket calls need kernel BTF (/sys/kernel/btf/vmlinux): %w", ErrUnsupported, err)
	}
	spec, err := loadTcpcalls()
	if err != nil {
		return nil, fmt.Errorf("process socket calls: %w", err)
	}
	constants, err := callOffsets(kernelBTF)
	if err != nil {
		return nil, fmt.Errorf("%w: process socket calls: %w", ErrUnsupported, err)
	}
	useTAI := !opts.monotonicClock && features.HaveProgramHelper(ebpf.TracePoint, asm.FnKtimeGetTaiNs) == nil
	constants[tcpcallsVarUseTai] = boolByte(useTAI)
	constants[tcpcallsVarWatchAllPorts] = boolByte(opts.AllPorts)
	constants[tcpcallsVarExcludePid] = opts.ExcludePID
	for name, value := range constants {
		if err := spec.Variables[name].Set(value); err != nil {
			return nil, fmt.Errorf("process socket calls: setting %s: %w", name, err)
		}
	}
	if opts.ringBufferSize != 0 {
		spec.Maps[tcpcallsMapCalls].MaxEntries = opts.ringBufferSize
	}

	// A function missing from this kernel drops its programs before
	// loading, so that the others load.
	var missing []string
	for _, h := range callHooks {
		var fn *btf.Func
		if err := kernelBTF.TypeByName(h.function, &fn); err != nil {
			missing = append(missing, h.call.String()+" ("+h.function+" is not in this kernel)")
			for _, p := range h.programs {
				delete(spec.Programs, p)
			}
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: kernelBTF}})
	if err != nil {
		return nil, classifyCalls(err, "loading the BPF programs", "fentry/fexit programs (Linux 5.17 or later, with kernel BTF)")
	}
	c := &Calls{coll: coll, ports: coll.Variables[tcpcallsVarWatchedPorts], lostVar: coll.Variables[tcpcallsVarLostCalls]}
	fail := func(err error) (*Calls, error) {
		for _, l := range c.links {
			l.Close()
		}
		coll.Close()
		return nil, err
	}
	if err := c.setPorts(opts.Ports); err != nil {
		return fail(err)
	}
	if c.clock, err = newKernelClock(useTAI); err != nil {
		return fail(fmt.Errorf("process socket calls: reading the clocks: %w", err))
	}
	var attachErr error
	for _, h := range callHooks {
		var hookLinks []link.Link
		for _, name := range h.programs {
			prog := coll.Programs[name]
			if prog == nil {
				break
			}
			l, err := link.AttachTracing(link.TracingOptions{Program: prog})
			if err != nil {
				attachErr = err
				missing = append(missing, h.call.String()+" ("+h.function+": "+err.Error()+")")
				for _, l := range hookLinks {
					l.Close()
				}
				hookLinks = nil
				break
			}
			hookLinks = append(hookLinks, l)
		}
		c.links = append(c.links, hookLinks...)
	}
	if len(c.links) == 0 {
		if attachErr == nil {
			attachErr = errors.New("no function to attach to")
		}
		return fail(classifyCalls(attachErr, "attaching to the kernel's TCP functions", "fentry/fexit programs"))
	}
	if len(missing) > 0 {
		c.missing = fmt.Errorf("%w: these calls are not shown: %s", ErrUnsupported, strings.Join(missing, ", "))
	}
	if c.reader, err = ringbuf.NewReader(coll.Maps[tcpcallsMapCalls]); err != nil {
		return fail(classifyCalls(err, "opening the BPF ring buffer", "BPF ring buffers (Linux 5.8 or later)"))
	}
	return c, nil
}

// classifyCalls is classify, with the process lane's words.
func classifyCalls(err error, doing, needs string) error {
	err = classify(err, doing, needs)
	if errors.Is(err, ErrPermission) || errors.Is(err, ErrUnsupported) {
		return err
	}
	return fmt.Errorf("process socket calls: %s", strings.TrimPrefix(err.Error(), "kernel socket states: "))
}

// callOffsets reads from kernel BTF where the programs find what they read
// in struct sock and, for previews, in struct msghdr and struct iov_iter.
// Without the sock fields nothing works (an error); without the others,
// reads and writes have no preview.
func callOffsets(spec *btf.Spec) (map[string]any, error) {
	var sockCommon *btf.Struct
	if err := spec.TypeByName("sock_common", &sockCommon); err != nil {
		return nil, fmt.Errorf("no struct sock_common in kernel BTF: %w", err)
	}
	c := map[string]any{}
	for name, field := range map[string]string{
		tcpcallsVarOffFamily:     "skc_family",
		tcpcallsVarOffNum:        "skc_num",
		tcpcallsVarOffDport:      "skc_dport",
		tcpcallsVarOffRcvSaddr:   "skc_rcv_saddr",
		tcpcallsVarOffDaddr:      "skc_daddr",
		tcpcallsVarOffV6RcvSaddr: "skc_v6_rcv_saddr",
		tcpcallsVarOffV6Daddr:    "skc_v6_daddr",
	} {
		off, _, ok := memberOffset(sockCommon, field)
		if !ok {
			return nil, fmt.Errorf("no %s in struct sock_common", field)
		}
		c[name] = off
	}
	// struct sock_common is struct sock's first member.
	var sock *btf.Struct
	if err := spec.TypeByName("sock", &sock); err != nil || len(sock.Members) == 0 || sock.Members[0].Offset != 0 {
		return nil, errors.New("struct sock does not start with struct sock_common")
	}

	var msghdr, iter *btf.Struct
	var iterType *btf.Enum
	if spec.TypeByName("msghdr", &msghdr) != nil || spec.TypeByName("iov_iter", &iter) != nil || spec.TypeByName("iter_type", &iterType) != nil {
		return c, nil
	}
	msgIter, _, ok1 := memberOffset(msghdr, "msg_iter")
	typeOff, typeT, ok2 := memberOffset(iter, "iter_type")
	iovOffset, _, ok3 := memberOffset(iter, "iov_offset")
	ptr, _, ok4 := memberOffset(iter, "ubuf")
	iov, _, ok5 := memberOffset(iter, "__iov")
	count, _, ok6 := memberOffset(iter, "count")
	if size, err := btf.Sizeof(typeT); err != nil || size != 1 || !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || iov != ptr {
		return c, nil
	}
	ubuf, iovec := -1, -1
	for _, v := range iterType.Values {
		switch v.Name {
		case "ITER_UBUF":
			ubuf = int(v.Value)
		case "ITER_IOVEC":
			iovec = int(v.Value)
		}
	}
	if ubuf < 0 || iovec < 0 {
		return c, nil
	}
	c[tcpcallsVarOffMsgIter] = msgIter
	c[tcpcallsVarOffIterType] = typeOff
	c[tcpcallsVarOffIovOffset] = iovOffset
	c[tcpcallsVarOffIterPtr] = ptr
	c[tcpcallsVarOffIterCount] = count
	c[tcpcallsVarIterUbuf] = uint8(ubuf)
	c[tcpcallsVarIterIovec] = uint8(iovec)
	return c, nil
}

// memberOffset finds a member by name in a struct or union, looking inside
// anonymous members, and returns its offset in bytes and its type. Bit
// fields are not found.
func memberOffset(t btf.Type, name string) (uint32, btf.Type, bool) {
	var members []btf.Member
	switch t := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		members = t.Members
	case *btf.Union:
		members = t.Members
	default:
		return 0, nil, false
	}
	for _, m := range members {
		if m.Name == name && m.BitfieldSize == 0 && m.Offset%8 == 0 {
			return m.Offset.Bytes(), m.Type, true
		}
		if m.Name == "" {
			if off, typ, ok := memberOffset(m.Type, name); ok {
				return m.Offset.Bytes() + off, typ, true
			}
		}
	}
	return 0, nil, false
}

// Missing says which calls are not reported because their kernel function
// could not be traced, as an error wrapping ErrUnsupported; nil when every
// call is.
func (c *Calls) Missing() error { return c.missing }

// SetPorts replaces the set of watched ports. It works after the process
// dropped its privileges (it writes memory shared with the BPF programs).
func (c *Calls) SetPorts(ports []uint16) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return c.setPorts(ports)
}

func (c *Calls) setPorts(ports []uint16) error {
	var set [65536]uint8
	for _, p := range ports {
		set[p] = 1
	}
	if err := c.ports.Set(set); err != nil {
		return fmt.Errorf("process socket calls: setting the watched ports: %w", err)
	}
	return nil
}

// Lost returns how many calls the kernel dropped because the ring buffer
// was full.
func (c *Calls) Lost() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.lost
	}
	return c.readLost()
}

func (c *Calls) readLost() uint64 {
	// Read until two reads agree: the programs may be adding to it.
	var prev uint64
	for {
		var n uint64
		if err := c.lostVar.Get(&n); err != nil {
			return prev
		}
		if n == prev {
			return n
		}
		prev = n
	}
}

// Run calls handle with each call, in the order the kernel recorded them,
// until ctx is done (it returns nil) or Calls is closed (it returns
// ErrClosed). One Run at a time. Calls recorded on different CPUs may be a
// few microseconds out of timestamp order: merge by Time. The Preview
// handle is given is its own to keep.
func (c *Calls) Run(ctx context.Context, handle func(Call)) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.runDone != nil:
		c.mu.Unlock()
		return errors.New("process socket calls: Run is already running")
	}
	done := make(chan struct{})
	c.runDone = done
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.runDone = nil
		c.mu.Unlock()
		close(done)
	}()

	stop := make(chan struct{})
	var stopper sync.WaitGroup
	stopper.Go(func() {
		select {
		case <-ctx.Done():
			c.reader.Flush()
		case <-stop:
		}
	})
	defer stopper.Wait()
	defer close(stop)

	var record ringbuf.Record
	for {
		err := c.reader.ReadInto(&record)
		switch {
		case err == nil:
		case errors.Is(err, ringbuf.ErrFlushed):
			if ctx.Err() != nil {
				return nil
			}
			continue
		case errors.Is(err, ringbuf.ErrClosed), errors.Is(err, os.ErrClosed):
			return ErrClosed
		default:
			return fmt.Errorf("process socket calls: reading the ring buffer: %w", err)
		}
		call, ok := c.decode(record.RawSample)
		if !ok {
			continue
		}
		handle(call)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// decode turns a ring-buffer record into a Call.
func (c *Calls) decode(raw []byte) (Call, bool) {
	var e tcpcallsCall
	if len(raw) < int(unsafe.Sizeof(e)) {
		return Call{}, false
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&e)), unsafe.Sizeof(e)), raw)

	call := Call{
		Time: c.clock.realtime(e.TimeNs),
		Kind: CallKind(e.Kind),
		PID:  e.Pid,
		Comm: commString(e.Comm),
	}
	switch e.Family {
	case afInet:
		call.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(e.Saddr[:4])), e.Sport)
		call.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(e.Daddr[:4])), e.Dport)
	case afInet6:
		call.Local = netip.AddrPortFrom(netip.AddrFrom16(e.Saddr), e.Sport)
		call.Remote = netip.AddrPortFrom(netip.AddrFrom16(e.Daddr), e.Dport)
	default:
		return Call{}, false
	}
	switch call.Kind {
	case CallRead, CallWrite:
		call.Len = int(max(e.Ret, 0))
		if n := min(int(e.PreviewLen), len(e.Preview)); n > 0 {
			call.Preview = append([]byte(nil), e.Preview[:n]...)
		}
	case CallConnect:
		if e.Ret < 0 {
			call.Err = syscall.Errno(-e.Ret)
		}
	case CallShutdown:
		call.How = ShutdownHow(e.How)
	}
	return call, true
}

// Close detaches the programs and frees their maps, after waiting for a Run
// in progress to return (it returns ErrClosed).
func (c *Calls) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.closeErr
	}
	c.closed = true
	running := c.runDone
	c.mu.Unlock()

	errs := []error{c.reader.Close()}
	if running != nil {
		<-running
	}
	lost := c.readLost()
	for _, l := range c.links {
		errs = append(errs, l.Close())
	}
	c.coll.Close()

	c.mu.Lock()
	c.lost = lost
	c.closeErr = errors.Join(errs...)
	c.mu.Unlock()
	return c.closeErr
}
