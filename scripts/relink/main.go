// Command relink rewrites a Linux loopback capture (link type Ethernet, as
// written by `tcpdump -i lo`) with another link-layer header, so the
// decoder in pkg/capture can be tested against captures as they look on
// other systems without needing those systems.
//
// Usage:
//
//	go run ./scripts/relink -to null|loop|raw IN.pcap OUT.pcap
//
// Target link types:
//
//	null  DLT_NULL (0): 4-byte address family in host byte order; written
//	      little-endian as macOS on x86-64/arm64 does, AF_INET=2,
//	      AF_INET6=30 (the macOS value).
//	loop  DLT_LOOP (108): the same 4-byte family, but big-endian
//	      (OpenBSD's loopback, as read by Wireshark).
//	raw   LINKTYPE_RAW (101): no link-layer header, bare IPv4/IPv6.
//
// Timestamps and the timestamp resolution of the input are kept; the
// original (wire) length of each packet is adjusted by the difference in
// header size (14-byte Ethernet header replaced by 4 or 0 bytes).
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

const (
	ethHeaderLen = 14

	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd

	afInet       = 2  // AF_INET everywhere
	afInet6Macos = 30 // AF_INET6 on macOS/Darwin

	// Nanosecond pcap magic, as read little-endian from the first 4 bytes
	// of a little-endian and of a big-endian file.
	magicNanos        = 0xa1b23c4d
	magicNanosSwapped = 0x4d3cb2a1
)

type target struct {
	linkType  layers.LinkType
	headerLen int
	order     binary.ByteOrder // nil for raw
}

var targets = map[string]target{
	"null": {layers.LinkTypeNull, 4, binary.LittleEndian},
	"loop": {layers.LinkTypeLoop, 4, binary.BigEndian},
	"raw":  {layers.LinkTypeRaw, 0, nil},
}

func main() {
	to := flag.String("to", "", "target link type: null, loop or raw")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: relink -to null|loop|raw IN.pcap OUT.pcap\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	t, ok := targets[*to]
	if !ok || flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	n, err := relink(flag.Arg(0), flag.Arg(1), t)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relink: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("relink: wrote %d packets to %s (link type %v)\n", n, flag.Arg(1), t.linkType)
}

func relink(inPath, outPath string, t target) (n int, err error) {
	in, err := os.Open(inPath)
	if err != nil {
		return 0, err
	}
	defer in.Close()

	// pcapgo v1.1.19's Reader.Resolution reports the opposite resolution,
	// so look at the magic number ourselves to keep the input's resolution.
	br := bufio.NewReader(in)
	magic, err := br.Peek(4)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", inPath, err)
	}
	r, err := pcapgo.NewReader(br)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", inPath, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		return 0, fmt.Errorf("%s: link type %v, want Ethernet", inPath, r.LinkType())
	}

	out, err := os.Create(outPath)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriter(out)
	var w *pcapgo.Writer
	switch m := binary.LittleEndian.Uint32(magic); m {
	case magicNanos, magicNanosSwapped:
		w = pcapgo.NewWriterNanos(bw)
	default:
		w = pcapgo.NewWriter(bw)
	}
	// The snap length is an upper bound, so the input's value stays valid.
	if err := w.WriteFileHeader(r.Snaplen(), t.linkType); err != nil {
		return 0, err
	}

	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("%s: packet %d: %v", inPath, n+1, err)
		}
		if len(data) < ethHeaderLen {
			return n, fmt.Errorf("%s: packet %d: only %d bytes captured", inPath, n+1, len(data))
		}
		var family uint32
		switch et := binary.BigEndian.Uint16(data[12:14]); et {
		case etherTypeIPv4:
			family = afInet
		case etherTypeIPv6:
			family = afInet6Macos
		default:
			return n, fmt.Errorf("%s: packet %d: unsupported EtherType %#04x", inPath, n+1, et)
		}
		payload := data[ethHeaderLen:]
		buf := make([]byte, t.headerLen+len(payload))
		if t.order != nil {
			t.order.PutUint32(buf[:4], family)
		}
		copy(buf[t.headerLen:], payload)

		ci.CaptureLength = len(buf)
		ci.Length -= ethHeaderLen - t.headerLen
		if err := w.WritePacket(ci, buf); err != nil {
			return n, fmt.Errorf("%s: packet %d: %v", outPath, n+1, err)
		}
		n++
	}
	return n, bw.Flush()
}
