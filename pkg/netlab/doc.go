// Package netlab is a small network that a lesson controls: a client network
// namespace and a server network namespace joined by a link that the
// playground process itself carries, so that it can delay, lose, duplicate,
// reorder and rate-limit packets on the lesson's word ("No answer", "A segment
// lost", "Congestion control").
//
// # Topology
//
//	client namespace                    playground process                  server namespace
//	lo, tun0 192.0.2.1/24   ── fd ──►  forwarder client→server  ── fd ──►  tun0 198.51.100.1/24, lo
//	     2001:db8:1::1/64   ◄── fd ──  forwarder server→client  ◄── fd ──       2001:db8:2::1/64
//
// Each namespace has a TUN device (layer 3: no Ethernet header, no ARP, no
// neighbour discovery) with an address from the documentation ranges and a
// route to the other side's prefix through it. Every IP packet one side sends
// to the other is read from its TUN file descriptor by this process, goes
// through the impairments of that direction (see Link), and is written to the
// other side's TUN descriptor. Packets for any other address are not
// forwarded (counted as Ignored), so nothing the lab carries can reach another
// network. The namespaces have no route to the host at all, so the lab's
// addresses cannot clash with a host that happens to sit on a documentation
// network itself.
//
// Why a userspace forwarder and not veth + tc: this kernel has no sch_netem,
// so tc cannot delay or lose packets, and tbf alone cannot drop "the third data
// segment" or "every SYN". In userspace every impairment is a few lines of Go,
// can change between two lesson steps without touching tc, is deterministic
// under a seed, and every decision is seen, counted and reported as an Event,
// which the timeline can show next to the segment the kernel sent.
// The cost is one read and one write system call per packet: measured on a
// 2-core machine, about 230,000 packets/s (300 MB/s of TCP) through a perfect
// link, of which the link's own Go code is under 0.1 µs per packet (see the
// benchmarks), far more than a lesson needs.
//
// # Namespaces that cannot leak
//
// The namespaces are anonymous: each one is made by unshare(CLONE_NEWNET) on
// an OS thread that stays locked inside it, and nothing is mounted under
// /run/netns. They live as long as that thread, the open TUN descriptors and
// sockets made in them, all of which the kernel closes when the process ends,
// however it ends (Close, Ctrl-C, SIGKILL, a crash). Nothing is ever created in
// the host's namespace: no interface, route, address or firewall rule; the
// learner's loopback and firewall are not touched.
//
// # Running code inside a namespace
//
// A socket belongs to the namespace of the thread that creates it. InClient
// and InServer run a function on the namespace's own thread, which entered the
// namespace once, while the process was root, and stays there until Close. So
// after the playground gives up root (setgroups, setgid, setuid), lessons
// can still listen and dial inside the lab: making a socket needs no
// privilege, only entering a namespace (setns) does.
//
//	addr := netip.AddrPortFrom(netlab.ServerAddr(), 4000).String()
//	err := lab.InServer(func() (err error) {
//		srv, err = server.Start(ctx, server.Config{Addr: addr}, emit)
//		return err
//	})
//	...
//	err = lab.InClient(func() (err error) {
//		c, err = client.Dial(ctx, addr, emit)
//		return err
//	})
//
// The function should make its sockets and return (a dial may wait for
// its handshake); what it starts in new
// goroutines runs on other threads, in the host namespace, which is fine for
// sockets already made (Accept, Read and Write work from any thread) but
// wrong for new ones. Calls on one namespace run one at a time.
//
// A packet capture is opened the same way, as root, before dropping
// privileges: pcap.OpenLive("tun0", …) called inside InServer opens its
// AF_PACKET socket in the server namespace and sees that namespace's tun0. Its
// link type is raw IP (LINKTYPE_RAW), not Ethernet. The namespace can also be
// entered from a shell while the lab runs: ClientNamespacePath and
// ServerNamespacePath give a /proc/PID/fd/N path for
// `nsenter --net=PATH tcpdump -ni tun0`.
//
// # What is not supported
//
// Linux only; it needs root (CAP_SYS_ADMIN for unshare, CAP_NET_ADMIN inside)
// and /dev/net/tun. Elsewhere New returns an error matching ErrPermission or
// ErrUnsupported. The package never prints and never exits.
package netlab
