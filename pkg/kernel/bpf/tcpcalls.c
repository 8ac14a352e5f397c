// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/*
 * tcpcalls: the socket calls of every process on the TCP sockets of the
 * ports user space watches (accept, connect, read, write, shutdown, close),
 * as fixed-layout records in a ring buffer. What BCC's tcpaccept,
 * tcpconnect and tcptop report, from tracepoints only:
 *
 *   read, write      raw tracepoints sock:sock_recv_length and
 *                    sock:sock_send_length (Linux 6.2), which every
 *                    socket read and write passes through, with the socket
 *                    and the bytes moved; the buffer and the start time
 *                    come from the syscall's sys_enter tracepoint
 *   accept, connect  syscalls:sys_exit_accept4, sys_exit_accept,
 *                    sys_enter_connect and sys_exit_connect
 *   shutdown, close  syscalls:sys_enter_shutdown, sys_enter_close
 *
 * fentry/fexit or kprobes on the TCP functions (inet_csk_accept,
 * tcp_v4_connect, tcp_sendmsg...) would say the same from inside TCP, but
 * need CONFIG_KPROBES, or a kernel that lets fentry programs load; the
 * tracepoints need neither (the machine this was written on has neither).
 *
 * A syscall names its socket by file descriptor: sock_of_fd walks the
 * current task's file table to the struct sock. No vmlinux.h: the loader
 * reads the offsets of the few kernel struct fields used from kernel BTF
 * and sets them as constants below.
 *
 * Regenerate the Go bindings and objects with `go generate ./pkg/kernel`
 * (needs clang); see ../generate.go.
 */

#include "bpf_defs.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define S_IFMT 0170000
#define S_IFSOCK 0140000
#define MSG_PEEK 2
#define EINPROGRESS 115
#define IPPROTO_TCP 6
#define TASK_COMM_LEN 16
#define PREVIEW_LEN 64
#define SOCKADDR_LEN 24 /* family, port, and an IPv4 (offset 4) or IPv6 (offset 8) address */

/* call.kind */
#define CALL_ACCEPT 1
#define CALL_CONNECT 2
#define CALL_READ 3
#define CALL_WRITE 4
#define CALL_SHUTDOWN 5
#define CALL_CLOSE 6

/* One socket call, as the Go side reads it (bpf2go generates its Go twin). */
struct call {
	__u64 time_ns; /* CLOCK_TAI, or CLOCK_MONOTONIC where bpf_ktime_get_tai_ns is missing */
	__u8 saddr[16]; /* local; IPv4 in the first 4 bytes */
	__u8 daddr[16]; /* remote */
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 kind;
	__u8 how; /* shutdown: 1 read side, 2 write side, 3 both */
	__u32 pid;
	__s32 ret; /* read, write: bytes moved; connect: 0 or -errno */
	__u32 preview_len;
	__u32 pad;
	char comm[TASK_COMM_LEN];
	__u8 preview[PREVIEW_LEN];
};

/* A system call in progress, by thread: from its sys_enter to the socket's tracepoint or its sys_exit. */
struct pending {
	__u64 time_ns;
	__u64 buf; /* the user buffer's first byte, or 0 */
	__u32 cap; /* how many bytes may be read from buf */
	__s32 fd;
	__u8 kind; /* CALL_READ (any read or write) or CALL_CONNECT */
	__u8 pad[7];
	__u8 addr[SOCKADDR_LEN]; /* connect: the start of the struct sockaddr asked for */
};

/* Set by the loader before the program is loaded. */
const volatile __u8 use_tai = 0;
const volatile __u8 watch_all_ports = 0;
const volatile __u32 exclude_pid = 0;
/*
 * The reader is woken only once this many bytes wait in the ring; until
 * then it finds them when it next polls (every few milliseconds, see
 * Calls.Run). A busy program makes a call every few microseconds: a wakeup
 * for each cost the playground more than the rest of its work on them.
 */
const volatile __u64 wakeup_bytes = 0;
/* Offsets in struct sock (struct sock_common is its first member). */
const volatile __u32 off_family = 0;
const volatile __u32 off_num = 0;
const volatile __u32 off_dport = 0;
const volatile __u32 off_rcv_saddr = 0;
const volatile __u32 off_daddr = 0;
const volatile __u32 off_v6_rcv_saddr = 0;
const volatile __u32 off_v6_daddr = 0;
/* struct sock's sk_protocol (a __u16 since Linux 5.6); 0 when unknown: then any inet socket passes. */
const volatile __u32 off_protocol = 0;
/* From a task to its sockets: task_struct.files, files_struct.fdt, fdtable.max_fds and .fd,
 * file.f_inode and .private_data, inode.i_mode, socket.type and .sk. */
const volatile __u32 off_task_files = 0;
const volatile __u32 off_files_fdt = 0;
const volatile __u32 off_fdt_max_fds = 0;
const volatile __u32 off_fdt_fd = 0;
const volatile __u32 off_file_inode = 0;
const volatile __u32 off_file_private = 0;
const volatile __u32 off_inode_mode = 0;
const volatile __u32 off_socket_type = 0;
const volatile __u32 off_socket_sk = 0;

/* Written by user space at any time through the memory-mapped .bss. */
__u8 watched_ports[65536];
/* Calls dropped because the ring buffer was full. */
__u64 lost_calls;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	/* Not used by the kernel; names the record type for bpf2go's -type. */
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct pending);
} pending SEC(".maps");

/* A socket's ports, host order. */
struct ports {
	__u16 local;
	__u16 remote;
};

/*
 * A socket's ports, by its address, as last reported: the kernel zeroes
 * them when the connection has gone on without the socket (its local port
 * once a TIME_WAIT socket took over, both when a connect failed), and the
 * process's close() comes after that.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct ports);
} known_ports SEC(".maps");

/* A syscall tracepoint's record: the common header, the syscall's number, its arguments or its result. */
struct sys_enter_args {
	__u64 common_header;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct sys_exit_args {
	__u64 common_header;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

static __always_inline __u64 now(void)
{
	return use_tai ? bpf_ktime_get_tai_ns() : bpf_ktime_get_ns();
}

static __always_inline __u64 read_ptr(__u64 addr)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (void *)addr);
	return v;
}

/* sock_ports is the socket's ports, or those it had before the kernel zeroed them. */
static __always_inline struct ports sock_ports(__u64 sk)
{
	struct ports p = {};
	__u16 dport = 0;

	bpf_probe_read_kernel(&p.local, sizeof(p.local), (void *)(sk + off_num));
	bpf_probe_read_kernel(&dport, sizeof(dport), (void *)(sk + off_dport));
	p.remote = __builtin_bswap16(dport);
	if (!p.local || !p.remote) {
		struct ports *k = bpf_map_lookup_elem(&known_ports, &sk);

		if (k) {
			if (!p.local)
				p.local = k->local;
			if (!p.remote)
				p.remote = k->remote;
		}
	}
	return p;
}

/* watched reports whether the socket at sk has a watched local or remote port. */
static __always_inline int watched(__u64 sk)
{
	if (!sk)
		return 0;
	if (watch_all_ports)
		return 1;
	struct ports p = sock_ports(sk);
	return watched_ports[p.local] || watched_ports[p.remote];
}

static __always_inline int excluded(void)
{
	return exclude_pid && (bpf_get_current_pid_tgid() >> 32) == exclude_pid;
}

/* sock_of_fd is the struct sock of the current task's descriptor fd when it is an IPv4 or IPv6 stream socket, else 0. */
static __always_inline __u64 sock_of_fd(__s64 fd)
{
	__u32 max_fds = 0;
	__u16 mode = 0, family = 0;
	__s16 type = 0;

	if (fd < 0)
		return 0;
	__u64 files = read_ptr(bpf_get_current_task() + off_task_files);
	if (!files)
		return 0;
	__u64 fdt = read_ptr(files + off_files_fdt);
	if (!fdt)
		return 0;
	bpf_probe_read_kernel(&max_fds, sizeof(max_fds), (void *)(fdt + off_fdt_max_fds));
	if ((__u64)fd >= max_fds)
		return 0;
	__u64 file = read_ptr(read_ptr(fdt + off_fdt_fd) + fd * 8);
	if (!file)
		return 0;
	bpf_probe_read_kernel(&mode, sizeof(mode), (void *)(read_ptr(file + off_file_inode) + off_inode_mode));
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	__u64 sock = read_ptr(file + off_file_private);
	if (!sock)
		return 0;
	bpf_probe_read_kernel(&type, sizeof(type), (void *)(sock + off_socket_type));
	if (type != SOCK_STREAM)
		return 0;
	__u64 sk = read_ptr(sock + off_socket_sk);
	if (!sk)
		return 0;
	bpf_probe_read_kernel(&family, sizeof(family), (void *)(sk + off_family));
	if (family != AF_INET && family != AF_INET6)
		return 0;
	return sk;
}

/*
 * emit records a call on sk; with buf, a preview of up to cap of its bytes;
 * with addr (a connect's struct sockaddr), the remote address where the
 * socket no longer has it.
 */
static __always_inline void emit(__u64 sk, __u8 kind, __u64 time_ns, __s32 r, __u8 how, __u64 buf, __u32 cap, __u8 *addr)
{
	struct call *c = bpf_ringbuf_reserve(&calls, sizeof(*c), 0);
	if (!c) {
		__sync_fetch_and_add(&lost_calls, 1);
		return;
	}
	__u16 family = 0;

	c->time_ns = time_ns;
	c->kind = kind;
	c->how = how;
	c->ret = r;
	c->pad = 0;
	c->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(c->comm, sizeof(c->comm));
	bpf_probe_read_kernel(&family, sizeof(family), (void *)(sk + off_family));
	c->family = family;
	struct ports p = sock_ports(sk);
	c->sport = p.local;
	c->dport = p.remote;
	__builtin_memset(c->saddr, 0, 16);
	__builtin_memset(c->daddr, 0, 16);
	if (family == AF_INET6) {
		bpf_probe_read_kernel(c->saddr, 16, (void *)(sk + off_v6_rcv_saddr));
		bpf_probe_read_kernel(c->daddr, 16, (void *)(sk + off_v6_daddr));
	} else {
		bpf_probe_read_kernel(c->saddr, 4, (void *)(sk + off_rcv_saddr));
		bpf_probe_read_kernel(c->daddr, 4, (void *)(sk + off_daddr));
	}
	if (addr && !c->dport) {
		__u16 af = *(__u16 *)addr;

		c->dport = __builtin_bswap16(*(__u16 *)(addr + 2));
		if (af == AF_INET6)
			__builtin_memcpy(c->daddr, addr + 8, 16);
		else if (af == AF_INET)
			__builtin_memcpy(c->daddr, addr + 4, 4);
		p.remote = c->dport;
	}
	if (kind == CALL_CLOSE)
		bpf_map_delete_elem(&known_ports, &sk);
	else if (p.local || p.remote)
		bpf_map_update_elem(&known_ports, &sk, &p, BPF_ANY);

	__u64 n = 0;
	if (buf && r > 0) {
		n = (__u32)r;
		if (n > cap)
			n = cap;
		/* Opaque to the compiler, so that the verifier sees the bound checked. */
		asm volatile("%[n] &= 0x7f" : [n] "+r"(n));
		if (n > PREVIEW_LEN)
			n = 0;
		if (n > 0 && bpf_probe_read_user(c->preview, n, (void *)buf) != 0)
			n = 0;
	}
	c->preview_len = n;
	bpf_ringbuf_submit(c, bpf_ringbuf_query(&calls, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* remember notes a read or write system call's start and buffer, for its socket's tracepoint. */
static __always_inline int remember(struct sys_enter_args *args, __u64 buf, __u64 len)
{
	if (excluded())
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct pending p = {
		.time_ns = now(),
		.buf = buf,
		.cap = len > PREVIEW_LEN ? PREVIEW_LEN : len,
		.fd = (__s32)args->args[0],
		.kind = CALL_READ,
	};

	bpf_map_update_elem(&pending, &id, &p, BPF_ANY);
	return 0;
}

/* read, write, recvfrom, sendto: (fd, buf, count...) */
static __always_inline int remember_buffer(struct sys_enter_args *args)
{
	return remember(args, args->args[1], args->args[2]);
}

/* readv, writev: (fd, iov, iovcnt); the preview is of the first buffer. */
static __always_inline int remember_iovec(struct sys_enter_args *args, __u64 iov_addr)
{
	__u64 iov[2] = {}; /* struct iovec: iov_base, iov_len */

	if (iov_addr)
		bpf_probe_read_user(iov, sizeof(iov), (void *)iov_addr);
	return remember(args, iov[0], iov[1]);
}

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct sys_enter_args *args) { return remember_buffer(args); }

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct sys_enter_args *args) { return remember_buffer(args); }

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct sys_enter_args *args) { return remember_buffer(args); }

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct sys_enter_args *args) { return remember_buffer(args); }

SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct sys_enter_args *args) { return remember_iovec(args, args->args[1]); }

SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct sys_enter_args *args) { return remember_iovec(args, args->args[1]); }

/* recvmsg, sendmsg: (fd, struct user_msghdr *msg, flags); msg_iov is at offset 16 of user_msghdr. */
static __always_inline int remember_msghdr(struct sys_enter_args *args)
{
	__u64 iov = 0;

	if (args->args[1])
		bpf_probe_read_user(&iov, sizeof(iov), (void *)(args->args[1] + 16));
	return remember_iovec(args, iov);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct sys_enter_args *args) { return remember_msghdr(args); }

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct sys_enter_args *args) { return remember_msghdr(args); }

/* is_tcp reports whether sk is an IPv4 or IPv6 TCP socket (the sock tracepoints see every socket: UDP, Unix...). */
static __always_inline int is_tcp(__u64 sk)
{
	__u16 family = 0, protocol = IPPROTO_TCP;

	bpf_probe_read_kernel(&family, sizeof(family), (void *)(sk + off_family));
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (off_protocol)
		bpf_probe_read_kernel(&protocol, sizeof(protocol), (void *)(sk + off_protocol));
	return protocol == IPPROTO_TCP;
}

/*
 * Every read or write of a socket passes the tracepoint, with its socket
 * and its result. A write is stamped at its system call's start (its
 * segments leave during the call), a read at its end (it may have waited for
 * the bytes). The buffer the system call named is this socket's only when
 * its descriptor is: a thread's last read(2) may have been of a file, and
 * this a sendfile or an io_uring send.
 */
static __always_inline int socket_io(struct bpf_raw_tracepoint_args *ctx, __u8 kind)
{
	__u64 sk = ctx->args[0];
	__s32 r = (__s32)ctx->args[1];
	__s32 flags = (__s32)ctx->args[2];

	if (r < 0 || (kind == CALL_READ && (flags & MSG_PEEK)) || !sk || excluded() || !is_tcp(sk) || !watched(sk))
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u64 start = now(), buf = 0;
	__u32 cap = 0;
	struct pending *p = bpf_map_lookup_elem(&pending, &id);

	if (p && p->kind == CALL_READ) {
		struct pending copy = *p;

		bpf_map_delete_elem(&pending, &id);
		if (sock_of_fd(copy.fd) == sk) {
			buf = copy.buf;
			cap = copy.cap;
			if (kind == CALL_WRITE)
				start = copy.time_ns;
		}
	}
	emit(sk, kind, start, r, 0, buf, cap, 0);
	return 0;
}

SEC("raw_tracepoint/sock_send_length")
int socket_write(struct bpf_raw_tracepoint_args *ctx) { return socket_io(ctx, CALL_WRITE); }

SEC("raw_tracepoint/sock_recv_length")
int socket_read(struct bpf_raw_tracepoint_args *ctx) { return socket_io(ctx, CALL_READ); }

/* accept(), accept4(): the new connection's descriptor. */
static __always_inline int accepted(struct sys_exit_args *args)
{
	if (args->ret < 0 || excluded())
		return 0;
	__u64 sk = sock_of_fd(args->ret);

	if (watched(sk))
		emit(sk, CALL_ACCEPT, now(), 0, 0, 0, 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct sys_exit_args *args) { return accepted(args); }

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct sys_exit_args *args) { return accepted(args); }

/* connect(): stamped at its start (the SYN leaves during it), reported at its end, when the socket has its local port. */
SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct sys_enter_args *args)
{
	if (excluded())
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct pending p = {.time_ns = now(), .fd = (__s32)args->args[0], .kind = CALL_CONNECT};

	if (args->args[1])
		bpf_probe_read_user(p.addr, sizeof(p.addr), (void *)args->args[1]);
	bpf_map_update_elem(&pending, &id, &p, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct sys_exit_args *args)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending, &id);

	if (!p || p->kind != CALL_CONNECT)
		return 0;
	struct pending copy = *p;
	bpf_map_delete_elem(&pending, &id);
	__u64 sk = sock_of_fd(copy.fd);
	/* A failed connect leaves the socket without its ports: the address asked for has them. */
	__u16 port = __builtin_bswap16(*(__u16 *)(copy.addr + 2));
	if (!sk || !(watched(sk) || (port && (watch_all_ports || watched_ports[port]))))
		return 0;
	__s32 r = (__s32)args->ret;
	if (r == -EINPROGRESS)
		r = 0; /* a non-blocking connect: the handshake goes on */
	emit(sk, CALL_CONNECT, copy.time_ns, r, 0, 0, 0, copy.addr);
	return 0;
}

/* shutdown(fd, how): SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2; reported as the kernel's RCV 1, SEND 2, both 3. */
SEC("tracepoint/syscalls/sys_enter_shutdown")
int enter_shutdown(struct sys_enter_args *args)
{
	if (excluded())
		return 0;
	__u64 sk = sock_of_fd(args->args[0]);

	if (watched(sk))
		emit(sk, CALL_SHUTDOWN, now(), 0, (__u8)(args->args[1] + 1), 0, 0, 0);
	return 0;
}

/* close(fd): the process lets go of the socket (the connection closes once no other descriptor holds it). */
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct sys_enter_args *args)
{
	if (excluded())
		return 0;
	__u64 sk = sock_of_fd(args->args[0]);

	if (watched(sk))
		emit(sk, CALL_CLOSE, now(), 0, 0, 0, 0, 0);
	return 0;
}
