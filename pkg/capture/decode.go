package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// LinkTypeLinuxSLL2 is Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276),
// which `tcpdump -i any` may write with libpcap ≥ 1.10. gopacket v1.1.19 has
// no decoder for it, and its LinkType is a uint8, so libpcap's 276 reaches
// us as 276 mod 256 = 20; no link type 20 is assigned, so 20 can only be
// this one.
const LinkTypeLinuxSLL2 layers.LinkType = 276 % 256

// sll2HeaderLen is the fixed size of a LINKTYPE_LINUX_SLL2 header.
const sll2HeaderLen = 20

// ErrNotTCP is returned by Decoder.Decode for a packet that holds no TCP
// segment it can read (ARP, UDP, an IP fragment, a truncated header...).
var ErrNotTCP = errors.New("not a TCP segment")

// Packet is the decoded view of one TCP segment, before connection tracking.
// Payload points into the capture's buffer and is valid only until the next
// Decode.
type Packet struct {
	Src, Dst    netip.AddrPort
	Seq, Ack    uint32
	Flags       Flags
	Window      uint16
	WindowScale int8 // the window scale option, -1 when absent
	MSS         uint16
	Len         int // payload length according to the IP header
	Payload     []byte
	Cut         Cut // what of the TCP header the snap length cut off

	// What tells one packet from another that repeats it: the IPv4
	// identification (0 for IPv6) and the TCP checksum.
	IPID, Checksum uint16
	// SACK blocks: DSACK when the first reports data received twice (RFC
	// 2883: below the ack, or inside the second block); SACKAbove when a
	// block reports data received beyond the ack (a gap before it).
	DSACK, SACKAbove bool
	// TFOCookie: a TCP Fast Open option with a cookie (not a bare request).
	TFOCookie bool
}

// Decoder turns a link-layer frame into a Packet. It reuses its layer
// structs, so decoding allocates nothing; it is not safe for concurrent use.
type Decoder struct {
	linkType layers.LinkType
	parser   *gopacket.DecodingLayerParser // starts at the link layer
	ip4First *gopacket.DecodingLayerParser // raw IP and SLL2: starts at IPv4
	ip6First *gopacket.DecodingLayerParser // raw IP and SLL2: starts at IPv6
	decoded  []gopacket.LayerType

	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	loop    layers.Loopback
	sll     layers.LinuxSLL
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	payload gopacket.Payload
}

// NewDecoder returns a decoder for frames of the given link type, or an
// error naming the link type when it is not one this package reads.
func NewDecoder(lt layers.LinkType) (*Decoder, error) {
	d := &Decoder{linkType: lt, decoded: make([]gopacket.LayerType, 0, 8)}
	all := []gopacket.DecodingLayer{&d.eth, &d.dot1q, &d.loop, &d.sll, &d.ip4, &d.ip6, &d.tcp, &d.payload}
	newParser := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first, all...)
		p.IgnoreUnsupported = true // UDP, ICMP and the like end the walk quietly
		return p
	}
	d.ip4First = newParser(layers.LayerTypeIPv4)
	d.ip6First = newParser(layers.LayerTypeIPv6)
	switch lt {
	case layers.LinkTypeEthernet:
		d.parser = newParser(layers.LayerTypeEthernet)
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		d.parser = newParser(layers.LayerTypeLoopback)
	case layers.LinkTypeLinuxSLL:
		d.parser = newParser(layers.LayerTypeLinuxSLL)
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14, LinkTypeLinuxSLL2:
		// 12 and 14 are DLT_RAW on OpenBSD and elsewhere; raw IP and SLL2
		// pick their first parser per packet.
	default:
		return nil, fmt.Errorf("link type %s (%d) is not supported: capture on a loopback, Ethernet or Linux \"any\" interface", lt, int(lt))
	}
	return d, nil
}

// LinkType is the link type this decoder reads.
func (d *Decoder) LinkType() layers.LinkType { return d.linkType }

// Decode reads one frame into p. It returns ErrNotTCP for frames that carry
// no readable TCP segment.
func (d *Decoder) Decode(frame []byte, p *Packet) error {
	parser := d.parser
	data := frame
	switch d.linkType {
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14:
		if len(data) == 0 {
			return ErrNotTCP
		}
		parser = d.byIPVersion(data[0] >> 4)
	case LinkTypeLinuxSLL2:
		if len(data) < sll2HeaderLen {
			return ErrNotTCP
		}
		switch layers.EthernetType(binary.BigEndian.Uint16(data[0:2])) {
		case layers.EthernetTypeIPv4:
			parser = d.ip4First
		case layers.EthernetTypeIPv6:
			parser = d.ip6First
		}
		data = data[sll2HeaderLen:]
	}
	if parser == nil {
		return ErrNotTCP
	}
	if err := parser.DecodeLayers(data, &d.decoded); err != nil {
		if !d.has(layers.LayerTypeTCP) {
			// The IP header may be whole and the TCP header cut by the
			// snap length: show what is known rather than drop it.
			return d.fillCut(p)
		}
	}
	if !d.has(layers.LayerTypeTCP) {
		return ErrNotTCP
	}
	return d.fill(p)
}

func (d *Decoder) byIPVersion(v byte) *gopacket.DecodingLayerParser {
	switch v {
	case 4:
		return d.ip4First
	case 6:
		return d.ip6First
	}
	return nil
}

func (d *Decoder) has(t gopacket.LayerType) bool {
	for _, got := range d.decoded {
		if got == t {
			return true
		}
	}
	return false
}

// fill copies what the tracker needs out of the reused layer structs.
func (d *Decoder) fill(p *Packet) error {
	tcpHeaderLen := int(d.tcp.DataOffset) * 4
	var ipPayloadLen int
	switch {
	case d.has(layers.LayerTypeIPv4):
		// A fragment's TCP header and payload can't be read alone.
		if d.ip4.FragOffset != 0 || d.ip4.Flags&layers.IPv4MoreFragments != 0 {
			return ErrNotTCP
		}
		p.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(d.ip4.SrcIP.To4())), uint16(d.tcp.SrcPort))
		p.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(d.ip4.DstIP.To4())), uint16(d.tcp.DstPort))
		ipPayloadLen = int(d.ip4.Length) - int(d.ip4.IHL)*4
		p.IPID = d.ip4.Id
	case d.has(layers.LayerTypeIPv6):
		p.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(d.ip6.SrcIP.To16())), uint16(d.tcp.SrcPort))
		p.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(d.ip6.DstIP.To16())), uint16(d.tcp.DstPort))
		// The IPv6 layer struct's payload is what follows its fixed header
		// (and a hop-by-hop header it decoded): TCP's header and data.
		ipPayloadLen = int(d.ip6.Length)
		p.IPID = 0 // IPv6 has no identification outside a fragment header
		if d.ip6.HopByHop != nil {
			ipPayloadLen -= len(d.ip6.HopByHop.Contents)
		}
		if d.ip6.Length == 0 { // jumbogram or segmentation offload: trust the capture
			ipPayloadLen = len(d.ip6.Payload)
		}
	default:
		return ErrNotTCP
	}
	p.Seq, p.Ack = d.tcp.Seq, d.tcp.Ack
	p.Flags = tcpFlags(&d.tcp)
	p.Window = d.tcp.Window
	p.WindowScale, p.MSS = -1, 0
	p.Checksum = d.tcp.Checksum
	p.DSACK, p.SACKAbove, p.TFOCookie = false, false, false
	for _, opt := range d.tcp.Options {
		switch opt.OptionType {
		case tcpOptionFastOpen:
			p.TFOCookie = len(opt.OptionData) > 0
		case tcpOptionExperimental:
			// RFC 7413's experimental form: the magic 0xF989, then the cookie.
			p.TFOCookie = len(opt.OptionData) > 2 && binary.BigEndian.Uint16(opt.OptionData) == 0xF989
		case layers.TCPOptionKindSACK:
			p.DSACK, p.SACKAbove = sackFacts(opt.OptionData, p.Ack)
		case layers.TCPOptionKindWindowScale:
			if len(opt.OptionData) == 1 {
				p.WindowScale = int8(min(opt.OptionData[0], 14)) // RFC 7323: larger means 14
			}
		case layers.TCPOptionKindMSS:
			if len(opt.OptionData) == 2 {
				p.MSS = binary.BigEndian.Uint16(opt.OptionData)
			}
		}
	}
	p.Len = max(ipPayloadLen-tcpHeaderLen, 0)
	p.Payload = d.tcp.Payload
	p.Cut = CutNone
	return nil
}

// fillCut reads a TCP segment whose header the snap length cut (`tcpdump
// -s 60` on IPv6 leaves 6 bytes of it; -s 60 on IPv4 leaves the fixed 20
// bytes but not the options): the addresses come from the whole IP header,
// the ports when their 4 bytes are there, and seq, ack, flags and window
// when the fixed 20-byte header is. Anything else that failed to decode is
// no readable segment.
func (d *Decoder) fillCut(p *Packet) error {
	var tcpBytes []byte
	var ipPayloadLen int
	var src, dst netip.Addr
	switch {
	case d.has(layers.LayerTypeIPv4):
		if d.ip4.Protocol != layers.IPProtocolTCP || d.ip4.FragOffset != 0 || d.ip4.Flags&layers.IPv4MoreFragments != 0 {
			return ErrNotTCP
		}
		tcpBytes, ipPayloadLen = d.ip4.Payload, int(d.ip4.Length)-int(d.ip4.IHL)*4
		src, dst = netip.AddrFrom4([4]byte(d.ip4.SrcIP.To4())), netip.AddrFrom4([4]byte(d.ip4.DstIP.To4()))
	case d.has(layers.LayerTypeIPv6):
		if d.ip6.NextHeader != layers.IPProtocolTCP || d.ip6.Length == 0 {
			return ErrNotTCP
		}
		tcpBytes, ipPayloadLen = d.ip6.Payload, int(d.ip6.Length)
		src, dst = netip.AddrFrom16([16]byte(d.ip6.SrcIP.To16())), netip.AddrFrom16([16]byte(d.ip6.DstIP.To16()))
	default:
		return ErrNotTCP
	}
	n := len(tcpBytes)
	hdrLen := 20
	if n > 12 {
		hdrLen = int(tcpBytes[12]>>4) * 4
	}
	if hdrLen < 20 || n >= min(hdrLen, ipPayloadLen) {
		return ErrNotTCP // not cut: a broken header
	}
	*p = Packet{WindowScale: -1, Cut: CutHeader}
	var sport, dport uint16
	if n >= 4 {
		sport, dport = binary.BigEndian.Uint16(tcpBytes[0:2]), binary.BigEndian.Uint16(tcpBytes[2:4])
	}
	p.Src, p.Dst = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	if n < 20 {
		return nil
	}
	p.Cut = CutOptions
	p.Seq = binary.BigEndian.Uint32(tcpBytes[4:8])
	p.Ack = binary.BigEndian.Uint32(tcpBytes[8:12])
	p.Flags = Flags(tcpBytes[13]) // the header's bit order is Flags' order
	p.Window = binary.BigEndian.Uint16(tcpBytes[14:16])
	p.Len = max(ipPayloadLen-hdrLen, 0)
	// The options that are whole before the cut.
	for opts := tcpBytes[20:n]; len(opts) > 0; {
		kind := opts[0]
		if kind == 0 {
			break
		}
		if kind == 1 {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
			break
		}
		switch data := opts[2:opts[1]]; {
		case kind == byte(layers.TCPOptionKindMSS) && len(data) == 2:
			p.MSS = binary.BigEndian.Uint16(data)
		case kind == byte(layers.TCPOptionKindWindowScale) && len(data) == 1:
			p.WindowScale = int8(min(data[0], 14))
		}
		opts = opts[opts[1]:]
	}
	return nil
}

// TCP option kinds gopacket v1.1.19 does not name: Fast Open (RFC 7413)
// and the experimental kind it used before it had its own.
const (
	tcpOptionFastOpen     layers.TCPOptionKind = 34
	tcpOptionExperimental layers.TCPOptionKind = 254
)

// sackFacts reads the blocks of a SACK option (left and right edges, 4
// bytes each) against the segment's ack.
func sackFacts(data []byte, ack uint32) (dsack, above bool) {
	n := len(data) / 8
	for i := 0; i < n; i++ {
		left, right := binary.BigEndian.Uint32(data[i*8:]), binary.BigEndian.Uint32(data[i*8+4:])
		if i == 0 {
			inSecond := n > 1 && !seqLT(left, binary.BigEndian.Uint32(data[8:])) && !seqGT(right, binary.BigEndian.Uint32(data[12:]))
			if seqLT(left, ack) || inSecond {
				dsack = true
				continue
			}
		}
		if seqGT(right, ack) {
			above = true
		}
	}
	return dsack, above
}

func tcpFlags(t *layers.TCP) Flags {
	var f Flags
	set := func(on bool, bit Flags) {
		if on {
			f |= bit
		}
	}
	set(t.FIN, FlagFIN)
	set(t.SYN, FlagSYN)
	set(t.RST, FlagRST)
	set(t.PSH, FlagPSH)
	set(t.ACK, FlagACK)
	set(t.URG, FlagURG)
	set(t.ECE, FlagECE)
	set(t.CWR, FlagCWR)
	return f
}
