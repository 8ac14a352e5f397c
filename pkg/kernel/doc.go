// Package kernel reports the kernel's side of TCP: every state change of a
// TCP socket, as it happens, the sockets' queues on demand, and the socket
// calls of any process. It is the playground's "kernel" and "process"
// lanes, beside the wire (package capture) and the program's own events
// (packages server and client).
//
// # State changes
//
// [Open] loads a small BPF program (bpf/tcpstates.c, modelled on BCC's
// tcpstates) on the tracepoint sock:inet_sock_set_state and filters, in the
// kernel, the sockets whose local or remote port is watched. [Tracer.Run]
// hands each change to a callback as a [StateChange]: when (on
// CLOCK_REALTIME, the clock of pcap timestamps, so the lanes merge on one
// clock), which socket (its kernel address), the old and new state, the
// local and remote address, and the process.
//
// For one connection closed by the client, the tracepoint reports, on the
// listener L, the client's socket C and the server's socket S:
//
//	L CLOSE→LISTEN          listen()
//	C CLOSE→SYN_SENT        connect(); the local port is still 0
//	C SYN_SENT→ESTABLISHED  the SYN+ACK arrived
//	S LISTEN→SYN_RECV       the handshake's last ACK arrived: S is born
//	S SYN_RECV→ESTABLISHED  (a SYN alone makes a request socket, NEW_SYN_RECV,
//	                         which the tracepoint does not report)
//	C ESTABLISHED→FIN_WAIT1 close()
//	S ESTABLISHED→CLOSE_WAIT
//	C FIN_WAIT1→FIN_WAIT2
//	S CLOSE_WAIT→LAST_ACK   close()
//	C FIN_WAIT2→CLOSE       the server's FIN arrived: C is now in TIME_WAIT
//	S LAST_ACK→CLOSE
//	L LISTEN→CLOSE          the listener's close()
//
// An abort (close with SO_LINGER 0) goes from ESTABLISHED straight to CLOSE
// on both sides. Changes are delivered in the order the kernel recorded them;
// on different CPUs that may differ from timestamp order by microseconds
// (the server's SYN_RECV can arrive after the client's ESTABLISHED): order
// by Time.
//
// The process needs care: a state change runs either in a system call of
// the process that holds the socket (listen, connect, shutdown, close) or in
// softirq when a packet arrives or a timer fires, where the "current" task
// is whichever the CPU happened to be running. StateChange.ProcessContext
// tells the two apart (from the socket lock's owned flag, whose offset comes
// from kernel BTF; without BTF, from the states only a system call enters).
// In softirq, PID and Comm are those of the process last seen changing that
// socket's state in process context, or zero when none was: a socket that
// accept() returned has no PID until its owner closes it.
//
// The tracepoint never reports TIME_WAIT: when the side that closed first
// receives the peer's FIN, its socket is replaced by a TIME_WAIT mini-socket
// and the tracepoint reports FIN_WAIT2→CLOSE (as it does when FIN_WAIT2 times
// out). [StateChange.MaybeTimeWait] flags such a change, and [TimeWaitOf]
// asks sock_diag whether the mini-socket exists.
//
// # Sockets and queues
//
// [Sockets] asks NETLINK_SOCK_DIAG for the TCP sockets on some ports, what
// `ss -tanmi` shows: state, addresses, a listener's accept queue and backlog,
// a connection's receive and send queues, from tcp_info the window it
// advertises, its congestion window and RTT, and a TIME_WAIT socket's
// remaining time. The port filter runs in the kernel (inet_diag bytecode):
// the reply to the one dump per address family holds only the sockets asked
// for, however many others the machine has.
// [WatchQueues] polls it and reports only what changed.
//
// # Socket calls
//
// [OpenCalls] loads a second BPF program (bpf/tcpcalls.c) that reports the
// socket calls of every process on the TCP sockets of the watched ports, as
// BCC's tcpaccept, tcpconnect and tcptop do, without changing the program:
// [Calls.Run] hands each to a callback as a [Call] (its time on
// CLOCK_REALTIME, kind, pid and comm, the connection's local and remote
// address, the bytes a read or write moved and a preview of them, which
// directions a shutdown closed). Reads and writes come from the tracepoints
// sock:sock_recv_length and sock:sock_send_length, which every read and
// write of a socket passes, with the socket and the bytes moved; the
// buffer (for the preview) and a write's start time come from the syscall's
// sys_enter tracepoint (read, write, readv, writev, recvfrom, sendto,
// recvmsg, sendmsg). Accept, connect, shutdown and close come from their
// syscall tracepoints, the socket found from the descriptor through the
// current task's file table. A write is stamped when its call starts (its
// segments leave during it), a read, an accept and a close when the call
// reaches the kernel or returns. The port filter runs in the kernel;
// Options.ExcludePID leaves out one process (the playground's own).
//
// fentry/fexit programs on inet_csk_accept, tcp_v4_connect, tcp_sendmsg...
// would say the same from inside TCP, but the kernel this was written on
// refuses to load them (EPERM, even for an empty program) and has no
// kprobes (CONFIG_KPROBES off); tracepoints need neither.
//
// Not seen: calls through io_uring (no syscall; their reads and writes
// still show, through the sock tracepoints, without a preview), and
// sendfile and splice show their length only. A close is the process's
// close(2) of a descriptor of the socket: with other descriptors open
// (dup, fork) the connection stays.
//
// # What the kernel must have
//
//   - The tracepoint sock:inet_sock_set_state: Linux 4.16 or later.
//   - BPF ring buffers: Linux 5.8 or later. Open returns an error wrapping
//     [ErrUnsupported] on older kernels, and on other systems than Linux.
//   - Root, or CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH (to read the
//     tracepoint's id in tracefs, which only root may read), and
//     CAP_SYS_ADMIN where tracefs is not mounted: Open then mounts it for the
//     moment it needs it and unmounts it again. Otherwise Open returns an
//     error wrapping [ErrPermission]. After Open the process may drop its privileges: the
//     ring buffer, the watched ports and the lost counter are memory-mapped,
//     and need no more bpf() calls.
//   - bpf_ktime_get_tai_ns (Linux 6.1) gives timestamps on CLOCK_TAI, which
//     moves with CLOCK_REALTIME; older kernels fall back to CLOCK_MONOTONIC
//     plus the offset measured at Open (see clock_linux.go).
//   - Kernel BTF (/sys/kernel/btf/vmlinux) for ProcessContext; without it a
//     heuristic decides (see above). OpenCalls needs it (for the offsets of
//     struct sock_common, task_struct.files, files_struct.fdt, fdtable,
//     file, inode.i_mode and socket): without it, it returns an error
//     wrapping ErrUnsupported.
//   - For OpenCalls: the tracepoints sock:sock_recv_length and
//     sock:sock_send_length (Linux 6.2) for reads and writes, and the
//     syscalls tracepoints (CONFIG_FTRACE_SYSCALLS) sys_exit_accept4,
//     sys_exit_accept, sys_enter_connect, sys_exit_connect,
//     sys_enter_shutdown, sys_enter_close and the sys_enter of the read and
//     write calls. Each that is missing drops only what it reports:
//     [Calls.Missing] names those calls in one error wrapping
//     ErrUnsupported, and the others are reported. Where none attaches,
//     OpenCalls fails. The programs use bpf_probe_read_user, so the kernel
//     must not be locked down against reading user memory.
//   - tcpi_rcv_wnd in tcp_info: Linux 6.2; on older kernels
//     TCPInfo.HasRcvWnd is false (tcpi_snd_wnd: Linux 5.19, HasSndWnd).
//     sock_diag itself is in every kernel this package runs on, and needs
//     no privileges.
//
// Where the kernel lane cannot run, the error's message is one line that says
// what is missing; the caller prints it and carries on without the lane.
//
// The package never prints and never exits. Every goroutine it starts ends
// when its context is done or its Tracer is closed, and is waited for.
package kernel
