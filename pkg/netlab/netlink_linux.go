package netlab

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// rtnl is a route netlink socket: the few requests the lab needs to set up
// a namespace (link up, address, route), written by hand rather than adding
// a netlink library for three message types. It belongs to the namespace of
// the thread that opened it.
type rtnl struct {
	fd  int
	seq uint32
}

func openRTNL() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return &rtnl{fd: fd}, nil
}

func (r *rtnl) close() { unix.Close(r.fd) }

// request sends one message and waits for the kernel's acknowledgment.
func (r *rtnl) request(typ uint16, flags uint16, body []byte) error {
	r.seq++
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:4], uint32(unix.NLMSG_HDRLEN+len(body)))
	ne.PutUint16(msg[4:6], typ)
	ne.PutUint16(msg[6:8], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(msg[8:12], r.seq)
	msg = append(msg, body...)
	if err := unix.Sendto(r.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(r.fd, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != r.seq || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return fmt.Errorf("netlink: short acknowledgment")
			}
			if errno := int32(ne.Uint32(m.Data[0:4])); errno != 0 {
				return syscall.Errno(-errno)
			}
			return nil
		}
	}
}

// attr appends a route attribute (length, type, value padded to 4 bytes).
func attr(b []byte, typ uint16, value []byte) []byte {
	l := unix.SizeofRtAttr + len(value)
	var h [unix.SizeofRtAttr]byte
	binary.NativeEndian.PutUint16(h[0:2], uint16(l))
	binary.NativeEndian.PutUint16(h[2:4], typ)
	b = append(b, h[:]...)
	b = append(b, value...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// linkUp sets a link up, and its MTU if mtu > 0.
func (r *rtnl) linkUp(index int, mtu int) error {
	b := make([]byte, unix.SizeofIfInfomsg)
	// struct ifinfomsg: family, pad, type, index, flags, change
	binary.NativeEndian.PutUint32(b[4:8], uint32(index))
	binary.NativeEndian.PutUint32(b[8:12], unix.IFF_UP)
	binary.NativeEndian.PutUint32(b[12:16], unix.IFF_UP)
	if mtu > 0 {
		b = attr(b, unix.IFLA_MTU, u32(uint32(mtu)))
	}
	return r.request(unix.RTM_NEWLINK, 0, b)
}

// addAddr gives a link an address, with duplicate address detection off:
// there is no one else on a TUN link, and DAD would leave an IPv6 address
// unusable for a second.
func (r *rtnl) addAddr(index int, p netip.Prefix) error {
	// struct ifaddrmsg: family, prefixlen, flags, scope, index
	b := []byte{family(p.Addr()), uint8(p.Bits()), unix.IFA_F_NODAD, unix.RT_SCOPE_UNIVERSE, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[4:8], uint32(index))
	a := p.Addr().AsSlice()
	b = attr(b, unix.IFA_LOCAL, a)
	b = attr(b, unix.IFA_ADDRESS, a)
	b = attr(b, unix.IFA_FLAGS, u32(unix.IFA_F_NODAD))
	return r.request(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, b)
}

// addRoute routes a prefix straight out of a link (no gateway: a TUN link
// has no neighbours, the packet goes to whoever reads the device).
func (r *rtnl) addRoute(index int, dst netip.Prefix) error {
	dst = dst.Masked()
	// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
	b := []byte{family(dst.Addr()), uint8(dst.Bits()), 0, 0,
		unix.RT_TABLE_MAIN, unix.RTPROT_BOOT, unix.RT_SCOPE_LINK, unix.RTN_UNICAST, 0, 0, 0, 0}
	b = attr(b, unix.RTA_DST, dst.Addr().AsSlice())
	b = attr(b, unix.RTA_OIF, u32(uint32(index)))
	return r.request(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, b)
}
