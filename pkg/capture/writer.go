package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// linkTypeSLL2 is LINKTYPE_LINUX_SLL2 as a capture file spells it; gopacket's
// uint8 LinkType can only say LinkTypeLinuxSLL2 (276 mod 256).
const linkTypeSLL2 = 276

// Writer writes captured frames to a pcap file, or a pcapng file when the
// name ends in ".pcapng", as `tcpdump -w` would: the same link type, and
// SnapLen. Timestamps keep nanoseconds. A Writer is not safe for concurrent
// use: call WriteFrame from the loop that reads the segments.
//
//	for seg, err := range reader.Segments(ctx) {
//		...
//		data, origLen, t := reader.Frame()
//		if err := w.WriteFrame(data, origLen, t); err != nil { ... }
//	}
type Writer struct {
	file  *os.File
	buf   *bufio.Writer      // pcap: buffers pcapgo's small writes
	pcap  *pcapgo.Writer     // one of pcap and ng is set
	ng    *pcapgo.NgWriter   // buffers itself
	fixup *linkTypeFixWriter // pcapng SLL2 only
	path  string
	err   error // the first write error: the file is incomplete after it
}

// CreateWriter creates (or truncates) the file at path and writes its
// header for frames of linkType, which is what Reader.LinkType says;
// LinkTypeLinuxSLL2 is written as 276, so tcpdump and Wireshark read an
// SLL2 capture back as SLL2.
func CreateWriter(path string, linkType layers.LinkType) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := &Writer{file: f, path: path}
	if err := w.start(linkType); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("%s: writing the header: %w", path, err)
	}
	return w, nil
}

func (w *Writer) start(linkType layers.LinkType) error {
	if strings.HasSuffix(strings.ToLower(w.path), ".pcapng") {
		intf := pcapgo.DefaultNgInterface
		intf.LinkType = linkType
		intf.SnapLength = SnapLen
		var out io.Writer = w.file
		if linkType == LinkTypeLinuxSLL2 {
			// pcapgo writes the interface's link type from the uint8; mend
			// the header on its way to the file.
			w.fixup = &linkTypeFixWriter{w: w.file, linkType: linkTypeSLL2}
			out = w.fixup
		}
		opts := pcapgo.DefaultNgWriterOptions
		opts.SectionInfo.Application = "tcp playground"
		ng, err := pcapgo.NewNgWriterInterface(out, intf, opts)
		if err != nil {
			return err
		}
		w.ng = ng
		// The section and interface blocks reach the file in one write,
		// which the fixup needs.
		if err := ng.Flush(); err != nil {
			return err
		}
		if w.fixup != nil && !w.fixup.done {
			return errors.New("pcapng interface block not found")
		}
		return nil
	}
	w.buf = bufio.NewWriterSize(w.file, 64<<10)
	w.pcap = pcapgo.NewWriterNanos(w.buf)
	if linkType == LinkTypeLinuxSLL2 {
		// pcapgo's WriteFileHeader would write 20: write the header here;
		// a pcapgo.Writer without WriteFileHeader appends packets to it.
		return writePcapHeader(w.buf, SnapLen, linkTypeSLL2)
	}
	return w.pcap.WriteFileHeader(SnapLen, linkType)
}

// WriteFrame writes one frame: data as captured, origLen its length on the
// wire (0 means len(data)), t its capture time. After an error the file is
// incomplete, and every later call returns that error.
func (w *Writer) WriteFrame(data []byte, origLen int, t time.Time) error {
	if w.err != nil {
		return w.err
	}
	if origLen <= 0 {
		origLen = len(data)
	}
	ci := gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(data), Length: origLen}
	var err error
	if w.ng != nil {
		err = w.ng.WritePacket(ci, data)
	} else {
		err = w.pcap.WritePacket(ci, data)
	}
	if err != nil {
		w.err = fmt.Errorf("%s: %w", w.path, err)
	}
	return w.err
}

// Flush writes buffered frames to the file, so that another program can
// read what was captured so far.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	var err error
	if w.ng != nil {
		err = w.ng.Flush()
	} else if w.buf != nil {
		err = w.buf.Flush()
	}
	if err != nil {
		w.err = fmt.Errorf("%s: %w", w.path, err)
	}
	return w.err
}

// Close flushes and closes the file. It may be called more than once.
func (w *Writer) Close() error {
	if w.file == nil {
		return w.err
	}
	err := w.Flush()
	if cerr := w.file.Close(); err == nil && cerr != nil {
		err = cerr
	}
	w.file = nil
	if w.err == nil {
		w.err = err
	}
	return err
}

// writePcapHeader writes a little-endian, nanosecond pcap file header, as
// pcapgo.NewWriterNanos does, for any 16-bit link type.
func writePcapHeader(w io.Writer, snapLen uint32, linkType uint32) error {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:4], 0xa1b23c4d) // nanosecond magic
	binary.LittleEndian.PutUint16(h[4:6], 2)
	binary.LittleEndian.PutUint16(h[6:8], 4)
	binary.LittleEndian.PutUint32(h[16:20], snapLen)
	binary.LittleEndian.PutUint32(h[20:24], linkType)
	_, err := w.Write(h[:])
	return err
}

// linkTypeFixWriter sets the link type of the first pcapng interface
// description block that passes through it. pcapgo writes the section
// header and that block first; Writer flushes them in one write.
type linkTypeFixWriter struct {
	w        io.Writer
	linkType uint16
	done     bool
}

func (f *linkTypeFixWriter) Write(p []byte) (int, error) {
	if f.done {
		return f.w.Write(p)
	}
	const (
		blockSectionHeader = 0x0a0d0d0a
		blockInterface     = 0x00000001
	)
	le := binary.LittleEndian
	if len(p) >= 12 && le.Uint32(p[0:4]) == blockSectionHeader {
		shbLen := int(le.Uint32(p[4:8]))
		if len(p) >= shbLen+12 && le.Uint32(p[shbLen:shbLen+4]) == blockInterface {
			p = bytes.Clone(p)
			le.PutUint16(p[shbLen+8:shbLen+10], f.linkType)
			f.done = true
		}
	}
	return f.w.Write(p)
}
