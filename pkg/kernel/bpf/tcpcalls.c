// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/*
 * tcpcalls: the socket calls of every process on the TCP sockets of the
 * ports user space watches (accept, connect, read, write, shutdown, close),
 * as fixed-layout records in a ring buffer. Modelled on BCC's tcpaccept
 * (inet_csk_accept's return), tcpconnect (tcp_v4_connect, tcp_v6_connect)
 * and tcptop (tcp_sendmsg, tcp_recvmsg), with fentry/fexit programs.
 *
 * No vmlinux.h: the loader reads the offsets of the few kernel struct fields
 * the programs need from kernel BTF and sets them as constants below. An
 * offset of 0 means "unknown" where 0 cannot be the real offset.
 *
 * Regenerate the Go bindings and objects with `go generate ./pkg/kernel`
 * (needs clang); see ../generate.go.
 */

#include "bpf_defs.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define TASK_COMM_LEN 16
#define PREVIEW_LEN 64

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

/* A call in progress, from its fentry to its fexit, by thread. */
struct pending {
	__u64 time_ns;
	__u64 buf; /* the user buffer's first byte, or 0 */
	__u32 cap; /* how many bytes may be read from buf */
	__u32 depth; /* connect: tcp_v6_connect calls tcp_v4_connect for a mapped address */
};

/* Set by the loader before the program is loaded. */
const volatile __u8 use_tai = 0;
const volatile __u8 watch_all_ports = 0;
const volatile __u32 exclude_pid = 0;
/* Offsets in struct sock (struct sock_common is its first member). */
const volatile __u32 off_family = 0;
const volatile __u32 off_num = 0;
const volatile __u32 off_dport = 0;
const volatile __u32 off_rcv_saddr = 0;
const volatile __u32 off_daddr = 0;
const volatile __u32 off_v6_rcv_saddr = 0;
const volatile __u32 off_v6_daddr = 0;
/* Where a read's or write's user buffer is: struct msghdr and iov_iter. 0 when unknown: no preview. */
const volatile __u32 off_msg_iter = 0;
const volatile __u32 off_iter_type = 0xffffffff;
const volatile __u32 off_iov_offset = 0;
const volatile __u32 off_iter_ptr = 0; /* ubuf, or __iov */
const volatile __u32 off_iter_count = 0;
const volatile __u8 iter_ubuf = 0xff;
const volatile __u8 iter_iovec = 0xff;

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

static __always_inline __u64 now(void)
{
	return use_tai ? bpf_ktime_get_tai_ns() : bpf_ktime_get_ns();
}

static __always_inline __u64 arg(void *ctx, __u32 n)
{
	__u64 v = 0;

	bpf_get_func_arg(ctx, n, &v);
	return v;
}

static __always_inline __s64 ret(void *ctx)
{
	__u64 v = 0;

	bpf_get_func_ret(ctx, &v);
	return (__s64)v;
}

/* watched reports whether the socket at sk has a watched local or remote port. */
static __always_inline int watched(__u64 sk)
{
	__u16 num = 0, dport = 0;

	if (!sk)
		return 0;
	if (watch_all_ports)
		return 1;
	bpf_probe_read_kernel(&num, sizeof(num), (void *)(sk + off_num));
	bpf_probe_read_kernel(&dport, sizeof(dport), (void *)(sk + off_dport));
	dport = __builtin_bswap16(dport);
	return watched_ports[num] || watched_ports[dport];
}

static __always_inline int excluded(void)
{
	return exclude_pid && (bpf_get_current_pid_tgid() >> 32) == exclude_pid;
}

/* emit records a call on sk; with buf, a preview of up to n of its bytes. */
static __always_inline void emit(__u64 sk, __u8 kind, __u64 time_ns, __s32 r, __u8 how, __u64 buf, __u32 cap)
{
	struct call *c = bpf_ringbuf_reserve(&calls, sizeof(*c), 0);
	if (!c) {
		__sync_fetch_and_add(&lost_calls, 1);
		return;
	}
	__u16 family = 0, dport = 0;

	c->time_ns = time_ns;
	c->kind = kind;
	c->how = how;
	c->ret = r;
	c->pad = 0;
	c->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(c->comm, sizeof(c->comm));
	bpf_probe_read_kernel(&family, sizeof(family), (void *)(sk + off_family));
	c->family = family;
	bpf_probe_read_kernel(&c->sport, sizeof(c->sport), (void *)(sk + off_num));
	bpf_probe_read_kernel(&dport, sizeof(dport), (void *)(sk + off_dport));
	c->dport = __builtin_bswap16(dport);
	__builtin_memset(c->saddr, 0, 16);
	__builtin_memset(c->daddr, 0, 16);
	if (family == AF_INET6) {
		bpf_probe_read_kernel(c->saddr, 16, (void *)(sk + off_v6_rcv_saddr));
		bpf_probe_read_kernel(c->daddr, 16, (void *)(sk + off_v6_daddr));
	} else {
		bpf_probe_read_kernel(c->saddr, 4, (void *)(sk + off_rcv_saddr));
		bpf_probe_read_kernel(c->daddr, 4, (void *)(sk + off_daddr));
	}

	__u32 n = 0;
	if (buf && r > 0) {
		n = r;
		if (n > cap)
			n = cap;
		if (n > PREVIEW_LEN)
			n = PREVIEW_LEN;
		/* Tell the verifier what the branches above already did. */
		n &= 0x7f;
		if (n > PREVIEW_LEN)
			n = PREVIEW_LEN;
		if (bpf_probe_read_user(c->preview, n, (void *)buf) != 0)
			n = 0;
	}
	c->preview_len = n;
	bpf_ringbuf_submit(c, 0);
}

/* user_buffer finds where the bytes of a read or write are in user memory. */
static __always_inline void user_buffer(__u64 msg, struct pending *p)
{
	__u8 type = 0;
	__u64 iter, offset = 0, ptr = 0, count = 0;

	p->buf = 0;
	p->cap = 0;
	if (!off_msg_iter || off_iter_type == 0xffffffff || !msg)
		return;
	iter = msg + off_msg_iter;
	bpf_probe_read_kernel(&type, sizeof(type), (void *)(iter + off_iter_type));
	bpf_probe_read_kernel(&offset, sizeof(offset), (void *)(iter + off_iov_offset));
	bpf_probe_read_kernel(&ptr, sizeof(ptr), (void *)(iter + off_iter_ptr));
	if (type == iter_ubuf) {
		bpf_probe_read_kernel(&count, sizeof(count), (void *)(iter + off_iter_count));
		p->buf = ptr + offset;
		p->cap = count > PREVIEW_LEN ? PREVIEW_LEN : count;
		return;
	}
	if (type == iter_iovec && ptr) {
		__u64 iov[2] = {}; /* struct iovec: iov_base, iov_len */

		bpf_probe_read_kernel(iov, sizeof(iov), (void *)ptr);
		if (iov[1] <= offset)
			return;
		p->buf = iov[0] + offset;
		count = iov[1] - offset;
		p->cap = count > PREVIEW_LEN ? PREVIEW_LEN : count;
	}
}

/* accept(): inet_csk_accept returns the new connection's socket. */
SEC("fexit/inet_csk_accept")
int trace_accept(void *ctx)
{
	__u64 sk = (__u64)ret(ctx);

	if (!sk || excluded() || !watched(sk))
		return 0;
	emit(sk, CALL_ACCEPT, now(), 0, 0, 0, 0);
	return 0;
}

/* connect(): stamped at its start, reported at its end, when the socket has its local port. */
static __always_inline int connect_entry(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending, &id);

	if (p) {
		p->depth++;
		return 0;
	}
	struct pending n = {.time_ns = now(), .depth = 1};
	bpf_map_update_elem(&pending, &id, &n, BPF_ANY);
	return 0;
}

static __always_inline int connect_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending, &id);

	if (!p)
		return 0;
	if (p->depth > 1) {
		p->depth--; /* the inner call of a v4-mapped connect: the outer reports */
		return 0;
	}
	__u64 start = p->time_ns;
	bpf_map_delete_elem(&pending, &id);
	__u64 sk = arg(ctx, 0);
	if (excluded() || !watched(sk))
		return 0;
	emit(sk, CALL_CONNECT, start, (__s32)ret(ctx), 0, 0, 0);
	return 0;
}

SEC("fentry/tcp_v4_connect")
int trace_connect4(void *ctx) { return connect_entry(); }

SEC("fexit/tcp_v4_connect")
int trace_connect4_exit(void *ctx) { return connect_exit(ctx); }

SEC("fentry/tcp_v6_connect")
int trace_connect6(void *ctx) { return connect_entry(); }

SEC("fexit/tcp_v6_connect")
int trace_connect6_exit(void *ctx) { return connect_exit(ctx); }

/* A read or write: where its buffer is, at its start. */
static __always_inline int io_entry(void *ctx)
{
	__u64 sk = arg(ctx, 0);

	if (excluded() || !watched(sk))
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct pending p = {.time_ns = now()};

	user_buffer(arg(ctx, 1), &p);
	bpf_map_update_elem(&pending, &id, &p, BPF_ANY);
	return 0;
}

/*
 * A write is stamped at its start (the segment it makes leaves inside the
 * call), a read at its end (it may have waited for the bytes).
 */
static __always_inline int io_exit(void *ctx, __u8 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending, &id);

	if (!p)
		return 0;
	struct pending copy = *p;
	bpf_map_delete_elem(&pending, &id);
	__s64 r = ret(ctx);
	if (r < 0)
		return 0; /* EAGAIN and the like: nothing moved */
	emit(arg(ctx, 0), kind, kind == CALL_WRITE ? copy.time_ns : now(), (__s32)r, 0, copy.buf, copy.cap);
	return 0;
}

SEC("fentry/tcp_sendmsg")
int trace_write(void *ctx) { return io_entry(ctx); }

SEC("fexit/tcp_sendmsg")
int trace_write_exit(void *ctx) { return io_exit(ctx, CALL_WRITE); }

SEC("fentry/tcp_recvmsg")
int trace_read(void *ctx) { return io_entry(ctx); }

SEC("fexit/tcp_recvmsg")
int trace_read_exit(void *ctx) { return io_exit(ctx, CALL_READ); }

/* shutdown(): inet_shutdown calls tcp_shutdown with how + 1 (RCV_SHUTDOWN 1, SEND_SHUTDOWN 2). */
SEC("fentry/tcp_shutdown")
int trace_shutdown(void *ctx)
{
	__u64 sk = arg(ctx, 0);

	if (excluded() || !watched(sk))
		return 0;
	emit(sk, CALL_SHUTDOWN, now(), 0, (__u8)arg(ctx, 1), 0, 0);
	return 0;
}

/* close() of the socket's last file descriptor. */
SEC("fentry/tcp_close")
int trace_close(void *ctx)
{
	__u64 sk = arg(ctx, 0);

	if (excluded() || !watched(sk))
		return 0;
	emit(sk, CALL_CLOSE, now(), 0, 0, 0, 0);
	return 0;
}
