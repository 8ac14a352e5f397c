package netlab

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// IP protocol numbers the link names.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// Packet is what the link read of one IP packet's headers: enough to match
// rules and to describe the packet in an Event.
type Packet struct {
	// Len is the IP packet's length, headers included.
	Len int
	// Protocol is the IP protocol number (6 for TCP).
	Protocol uint8
	// Src and Dst carry ports for TCP and UDP, port 0 otherwise.
	Src, Dst netip.AddrPort
	// For TCP: flags, sequence and acknowledgment numbers (absolute, as on
	// the wire), and the number of data bytes.
	Flags      TCPFlags
	Seq, Ack   uint32
	PayloadLen int
}

// IsTCP reports whether the packet is a TCP segment whose header was read.
func (p *Packet) IsTCP() bool { return p.Protocol == protoTCP }

func (p Packet) String() string {
	switch p.Protocol {
	case protoTCP:
		return fmt.Sprintf("TCP %s → %s [%s] seq=%d ack=%d len=%d", p.Src, p.Dst, p.Flags, p.Seq, p.Ack, p.PayloadLen)
	case protoUDP:
		return fmt.Sprintf("UDP %s → %s len=%d", p.Src, p.Dst, p.PayloadLen)
	case protoICMP, protoICMPv6:
		return fmt.Sprintf("ICMP %s → %s", p.Src.Addr(), p.Dst.Addr())
	}
	return fmt.Sprintf("IP proto %d %s → %s len=%d", p.Protocol, p.Src.Addr(), p.Dst.Addr(), p.Len)
}

// parsePacket reads the IPv4 or IPv6 header of b and, for TCP and UDP, the
// ports (and TCP's flags and numbers). It reports false for anything that is
// not a whole IP header; the link does not forward such packets. IPv6
// extension headers are not followed: the lab's own stacks send none on TCP.
func parsePacket(b []byte, p *Packet) bool {
	*p = Packet{Len: len(b)}
	if len(b) < 1 {
		return false
	}
	var l4 []byte
	var src, dst netip.Addr
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return false
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < 20 || total < ihl || total > len(b) {
			return false
		}
		p.Protocol = b[9]
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		// A fragment after the first carries no transport header.
		if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			p.Src, p.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
			return true
		}
		l4 = b[ihl:total]
	case 6:
		if len(b) < 40 {
			return false
		}
		payload := int(binary.BigEndian.Uint16(b[4:6]))
		if 40+payload > len(b) {
			return false
		}
		p.Protocol = b[6]
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40 : 40+payload]
	default:
		return false
	}
	p.Src, p.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
	switch p.Protocol {
	case protoTCP:
		if len(l4) < 20 {
			p.Protocol = 0 // too short to be the TCP the rules talk about
			return true
		}
		off := int(l4[12]>>4) * 4
		if off < 20 || off > len(l4) {
			p.Protocol = 0
			return true
		}
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:2]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:4]))
		p.Seq = binary.BigEndian.Uint32(l4[4:8])
		p.Ack = binary.BigEndian.Uint32(l4[8:12])
		p.Flags = TCPFlags(l4[13])
		p.PayloadLen = len(l4) - off
	case protoUDP:
		if len(l4) >= 8 {
			p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:2]))
			p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:4]))
			p.PayloadLen = len(l4) - 8
		}
	}
	return true
}
