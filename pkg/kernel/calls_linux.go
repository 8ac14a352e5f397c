//go:build linux && (386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64)

package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
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
	objs    tcpcallsObjects
	links   []link.Link
	reader  *ringbuf.Reader
	clock   *kernelClock
	missing error

	mu      sync.Mutex
	closed  bool
	runDone chan struct{}
	lost    uint64

	closeErr error
}

// callHook is a tracepoint a program of bpf/tcpcalls.c attaches to, and
// what is not seen without it.
type callHook struct {
	group, name string // a syscalls tracepoint; group "" for a raw tracepoint
	program     func(*tcpcallsPrograms) *ebpf.Program
	without     string
}

var callHooks = []callHook{
	{"syscalls", "sys_exit_accept4", func(p *tcpcallsPrograms) *ebpf.Program { return p.ExitAccept4 }, "accept4()"},
	{"syscalls", "sys_exit_accept", func(p *tcpcallsPrograms) *ebpf.Program { return p.ExitAccept }, "accept()"},
	{"syscalls", "sys_enter_connect", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterConnect }, "connect()"},
	{"syscalls", "sys_exit_connect", func(p *tcpcallsPrograms) *ebpf.Program { return p.ExitConnect }, "connect()"},
	{"", "sock_recv_length", func(p *tcpcallsPrograms) *ebpf.Program { return p.SocketRead }, "reads (the tracepoint sock:sock_recv_length is in Linux 6.2 and later)"},
	{"", "sock_send_length", func(p *tcpcallsPrograms) *ebpf.Program { return p.SocketWrite }, "writes (the tracepoint sock:sock_send_length is in Linux 6.2 and later)"},
	{"syscalls", "sys_enter_read", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterRead }, "read()'s previews"},
	{"syscalls", "sys_enter_readv", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterReadv }, "readv()'s previews"},
	{"syscalls", "sys_enter_recvfrom", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterRecvfrom }, "recv()'s previews"},
	{"syscalls", "sys_enter_recvmsg", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterRecvmsg }, "recvmsg()'s previews"},
	{"syscalls", "sys_enter_write", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterWrite }, "write()'s previews and start times"},
	{"syscalls", "sys_enter_writev", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterWritev }, "writev()'s previews and start times"},
	{"syscalls", "sys_enter_sendto", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterSendto }, "send()'s previews and start times"},
	{"syscalls", "sys_enter_sendmsg", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterSendmsg }, "sendmsg()'s previews and start times"},
	{"syscalls", "sys_enter_shutdown", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterShutdown }, "shutdown()"},
	{"syscalls", "sys_enter_close", func(p *tcpcallsPrograms) *ebpf.Program { return p.EnterClose }, "close()"},
}

// OpenCalls loads the BPF programs of the socket calls, attaches them to
// their tracepoints and opens their ring buffer. Calls are recorded from
// now on; Run delivers them. Where some tracepoints are missing (an older
// kernel, or one built without syscall tracepoints), the others still
// work: Missing says what is not seen. Where none can, it returns an error
// wrapping ErrUnsupported or ErrPermission.
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
	// Wake the reader when a sixteenth of the ring is used, long before
	// it is full; otherwise Run polls.
	if err := spec.Variables[tcpcallsVarWakeupBytes].Set(uint64(spec.Maps[tcpcallsMapCalls].MaxEntries / 16)); err != nil {
		return nil, fmt.Errorf("process socket calls: setting wakeup_bytes: %w", err)
	}

	c := &Calls{}
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		return nil, classifyCalls(err, "loading the BPF programs", "BPF tracepoint programs")
	}
	fail := func(err error) (*Calls, error) {
		for _, l := range c.links {
			l.Close()
		}
		c.objs.Close()
		return nil, err
	}
	if err := c.setPorts(opts.Ports); err != nil {
		return fail(err)
	}
	if c.clock, err = newKernelClock(useTAI); err != nil {
		return fail(fmt.Errorf("process socket calls: reading the clocks: %w", err))
	}
	var missing []string
	var attachErr error
	err = withTracefs(func() error {
		for _, h := range callHooks {
			var l link.Link
			var err error
			switch {
			case h.name == opts.missingTracepoint:
				err = fmt.Errorf("no tracepoint %s: %w", h.name, os.ErrNotExist)
			case h.group == "":
				l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: h.name, Program: h.program(&c.objs.tcpcallsPrograms)})
			default:
				l, err = link.Tracepoint(h.group, h.name, h.program(&c.objs.tcpcallsPrograms), nil)
			}
			if err != nil {
				attachErr = err
				if !slices.Contains(missing, h.without) {
					missing = append(missing, h.without)
				}
				continue
			}
			c.links = append(c.links, l)
		}
		return nil
	})
	if err != nil {
		return fail(classifyCalls(err, "mounting tracefs", "tracefs"))
	}
	if len(c.links) == 0 {
		return fail(classifyCalls(attachErr, "attaching to the tracepoints", "syscall tracepoints"))
	}
	if len(missing) > 0 {
		c.missing = unsupported(fmt.Sprintf("these calls are not shown here: %s (%v)", strings.Join(missing, ", "), attachErr))
	}
	if c.reader, err = ringbuf.NewReader(c.objs.Calls); err != nil {
		return fail(classifyCalls(err, "opening the BPF ring buffer", "BPF ring buffers (Linux 5.8 or later)"))
	}
	return c, nil
}

// classifyCalls is classify, with the process lane's words. A program
// the verifier refused is a bug here, not a missing permission, though
// the kernel says EACCES.
func classifyCalls(err error, doing, needs string) error {
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		return fmt.Errorf("process socket calls: %s: %w", doing, err)
	}
	err = classify(err, doing, needs)
	if errors.Is(err, ErrPermission) || errors.Is(err, ErrUnsupported) {
		return err
	}
	return fmt.Errorf("process socket calls: %s", strings.TrimPrefix(err.Error(), "kernel socket states: "))
}

// callOffsets reads from kernel BTF where the programs find what they read
// in the kernel's structs: a socket's addresses and ports (struct
// sock_common), and the way from the current task to the socket of a file
// descriptor.
func callOffsets(spec *btf.Spec) (map[string]any, error) {
	c := map[string]any{}
	for _, f := range []struct{ variable, typ, member string }{
		{tcpcallsVarOffFamily, "sock_common", "skc_family"},
		{tcpcallsVarOffNum, "sock_common", "skc_num"},
		{tcpcallsVarOffDport, "sock_common", "skc_dport"},
		{tcpcallsVarOffRcvSaddr, "sock_common", "skc_rcv_saddr"},
		{tcpcallsVarOffDaddr, "sock_common", "skc_daddr"},
		{tcpcallsVarOffV6RcvSaddr, "sock_common", "skc_v6_rcv_saddr"},
		{tcpcallsVarOffV6Daddr, "sock_common", "skc_v6_daddr"},
		{tcpcallsVarOffTaskFiles, "task_struct", "files"},
		{tcpcallsVarOffFilesFdt, "files_struct", "fdt"},
		{tcpcallsVarOffFdtMaxFds, "fdtable", "max_fds"},
		{tcpcallsVarOffFdtFd, "fdtable", "fd"},
		{tcpcallsVarOffFileInode, "file", "f_inode"},
		{tcpcallsVarOffFilePrivate, "file", "private_data"},
		{tcpcallsVarOffInodeMode, "inode", "i_mode"},
		{tcpcallsVarOffSocketType, "socket", "type"},
		{tcpcallsVarOffSocketSk, "socket", "sk"},
	} {
		var s *btf.Struct
		if err := spec.TypeByName(f.typ, &s); err != nil {
			return nil, fmt.Errorf("no struct %s in kernel BTF: %w", f.typ, err)
		}
		off, _, ok := memberOffset(s, f.member)
		if !ok {
			return nil, fmt.Errorf("no %s in struct %s", f.member, f.typ)
		}
		c[f.variable] = off
	}
	// struct sock_common is struct sock's first member.
	var sock *btf.Struct
	if err := spec.TypeByName("sock", &sock); err != nil || len(sock.Members) == 0 || sock.Members[0].Offset != 0 {
		return nil, errors.New("struct sock does not start with struct sock_common")
	}
	// sk_protocol tells TCP from UDP on the sock tracepoints; a bit field
	// before Linux 5.6, where the programs do without it.
	c[tcpcallsVarOffProtocol] = uint32(0)
	if off, typ, ok := memberOffset(sock, "sk_protocol"); ok {
		if size, err := btf.Sizeof(typ); err == nil && size == 2 {
			c[tcpcallsVarOffProtocol] = off
		}
	}
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
	return writePorts(c.objs.WatchedPorts, ports, "process socket calls")
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

func (c *Calls) readLost() uint64 { return readCounter(c.objs.LostCalls) }

// callsPoll is how often Run looks for calls the kernel recorded without
// waking it (bpf/tcpcalls.c wakes it only once many wait): a call reaches
// the timeline at most this late, well within its reorder window.
const callsPoll = 4 * time.Millisecond

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

	return readRing(ctx, c.reader, callsPoll, "process socket calls", func(raw []byte) {
		if call, ok := c.decode(raw); ok {
			handle(call)
		}
	})
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
	// Detaching a tracepoint program waits for the kernel's RCU grace
	// period: one after the other, the dozen links took ~0.9 s, which made
	// Ctrl-C slow. Together, the waits overlap.
	linkErrs := make([]error, len(c.links))
	var detach sync.WaitGroup
	for i, l := range c.links {
		detach.Go(func() { linkErrs[i] = l.Close() })
	}
	detach.Wait()
	errs = append(errs, linkErrs...)
	errs = append(errs, c.objs.Close())

	c.mu.Lock()
	c.lost = lost
	c.closeErr = errors.Join(errs...)
	c.mu.Unlock()
	return c.closeErr
}
