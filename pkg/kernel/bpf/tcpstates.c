// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/*
 * tcpstates: every TCP state change the kernel makes, on the ports user space
 * watches, as a fixed-layout record in a ring buffer. Modelled on BCC's
 * tools/tcpstates, which reads the same tracepoint.
 *
 * Regenerate the Go bindings and objects with `go generate ./pkg/kernel`
 * (needs clang); see ../generate.go.
 */

#include "bpf_defs.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TASK_COMM_LEN 16

/* TCP states, as in include/net/tcp_states.h. */
#define TCP_SYN_SENT 2
#define TCP_FIN_WAIT1 4
#define TCP_CLOSE 7
#define TCP_LAST_ACK 9
#define TCP_LISTEN 10

/*
 * The tracepoint's record, declared from
 * /sys/kernel/tracing/events/sock/inet_sock_set_state/format (Linux 4.16 and
 * later; the layout has not changed since), so that no vmlinux.h is needed.
 * The first 8 bytes are the common trace header, which a BPF program may not
 * read.
 */
struct inet_sock_set_state_args {
	__u64 common_header;
	__u64 skaddr;
	__s32 oldstate;
	__s32 newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
};

/* event.flags */
#define EVENT_PROCESS_CONTEXT 1 /* a process held the socket's lock: pid is that process */
#define EVENT_OWNER_REMEMBERED 2 /* pid and comm come from an earlier process-context change */

/* One state change, as the Go side reads it (bpf2go generates its Go twin). */
struct event {
	__u64 time_ns; /* CLOCK_TAI, or CLOCK_MONOTONIC where bpf_ktime_get_tai_ns is missing */
	__u64 skaddr;
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 oldstate;
	__u8 newstate;
	__u32 pid;
	__u8 flags;
	__u8 pad[3];
	char comm[TASK_COMM_LEN];
};

/* The process last seen changing a socket's state from its own system call. */
struct owner {
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

/* Set by the loader before the program is loaded. */
const volatile __u8 use_tai = 0;
const volatile __u8 watch_all_ports = 0;
/* Offset of sk_lock.owned in struct sock, from kernel BTF; 0 when unknown. */
const volatile __u32 sk_lock_owned_offset = 0;

/* Written by user space at any time through the memory-mapped .bss. */
__u8 watched_ports[65536];
/* Events dropped because the ring buffer was full. */
__u64 lost_events;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	/* Not used by the kernel; names the record type for bpf2go's -type. */
	__type(value, struct event);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct owner);
} owners SEC(".maps");

/*
 * A state change runs either inside a system call of the process that holds
 * the socket's lock (listen, connect, shutdown, close, or a send or receive
 * that processes packets queued while it held the lock), or in softirq or a
 * timer, where the current task is whatever the CPU happened to be running.
 * The socket lock's owned flag tells the two apart. Without its offset (no
 * kernel BTF), fall back to the states only a system call enters.
 */
static __always_inline int in_process_context(__u64 skaddr, __s32 newstate)
{
	if (sk_lock_owned_offset) {
		__s32 owned = 0;

		if (bpf_probe_read_kernel(&owned, sizeof(owned), (void *)(skaddr + sk_lock_owned_offset)) == 0)
			return owned != 0;
	}
	switch (newstate) {
	case TCP_LISTEN:
	case TCP_SYN_SENT:
	case TCP_FIN_WAIT1:
	case TCP_LAST_ACK:
		return 1;
	}
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int handle_set_state(struct inet_sock_set_state_args *args)
{
	if (args->protocol != IPPROTO_TCP)
		return 0;

	__u16 sport = args->sport, dport = args->dport;
	if (!watch_all_ports && !watched_ports[sport] && !watched_ports[dport])
		return 0;

	/* Read the clock first: it is the moment of the change. */
	__u64 now = use_tai ? bpf_ktime_get_tai_ns() : bpf_ktime_get_ns();
	__u64 skaddr = args->skaddr;
	__s32 newstate = args->newstate;

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost_events, 1);
		return 0;
	}

	e->time_ns = now;
	e->skaddr = skaddr;
	e->sport = sport;
	e->dport = dport;
	e->family = args->family;
	e->oldstate = args->oldstate;
	e->newstate = newstate;
	e->flags = 0;
	e->pad[0] = e->pad[1] = e->pad[2] = 0;
	if (args->family == AF_INET6) {
		__builtin_memcpy(e->saddr, args->saddr_v6, 16);
		__builtin_memcpy(e->daddr, args->daddr_v6, 16);
	} else {
		__builtin_memset(e->saddr, 0, 16);
		__builtin_memset(e->daddr, 0, 16);
		__builtin_memcpy(e->saddr, args->saddr, 4);
		__builtin_memcpy(e->daddr, args->daddr, 4);
	}

	if (in_process_context(skaddr, newstate)) {
		struct owner o = {};

		o.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(o.comm, sizeof(o.comm));
		e->pid = o.pid;
		__builtin_memcpy(e->comm, o.comm, TASK_COMM_LEN);
		e->flags = EVENT_PROCESS_CONTEXT;
		if (newstate != TCP_CLOSE)
			bpf_map_update_elem(&owners, &skaddr, &o, BPF_ANY);
	} else {
		struct owner *o = bpf_map_lookup_elem(&owners, &skaddr);

		if (o) {
			e->pid = o->pid;
			__builtin_memcpy(e->comm, o->comm, TASK_COMM_LEN);
			e->flags = EVENT_OWNER_REMEMBERED;
		} else {
			e->pid = 0;
			__builtin_memset(e->comm, 0, TASK_COMM_LEN);
		}
	}
	/* A closed socket's memory may be reused for another socket. */
	if (newstate == TCP_CLOSE)
		bpf_map_delete_elem(&owners, &skaddr);

	bpf_ringbuf_submit(e, 0);
	return 0;
}
