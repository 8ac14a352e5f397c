package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// The first four bytes of a capture file: pcap (either byte order, micro-
// or nanosecond timestamps) or a pcapng section header block.
const (
	pcapMagicMicro = 0xa1b2c3d4
	pcapMagicNano  = 0xa1b23c4d
	pcapngMagic    = 0x0a0d0d0a
)

// OpenFile opens a pcap or pcapng file, in pure Go (gopacket's pcapgo), so
// reading a capture needs neither libpcap nor privileges. A pcapng file
// whose interfaces have different link types (dumpcap on lo and any at
// once) is read frame by frame, each by its own interface's link type, as
// tshark does; libpcap refuses such files.
func OpenFile(path string) (*Reader, error) {
	info, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, err // *fs.PathError: "stat x: no such file or directory"
	case info.IsDir():
		return nil, fmt.Errorf("%s is a directory: %w", path, ErrNotCaptureFile)
	case info.Size() == 0:
		return nil, fmt.Errorf("%s is empty: %w", path, ErrNotCaptureFile)
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("%s: permission denied", path)
		}
		return nil, err
	}
	src, err := newFileSource(f, info.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r, err := NewReader(src, path, "")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.readError = func(err error, frame uint64) error {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%s: %w: frame %d is cut short (the file ends inside it)", path, ErrTruncated, frame)
		}
		return fmt.Errorf("%s: frame %d can't be read: %v", path, frame, err)
	}
	return r, nil
}

// fileSource reads frames from a pcap or pcapng file.
type fileSource struct {
	file     *os.File
	read     func() ([]byte, gopacket.CaptureInfo, error)
	linkType layers.LinkType
	ng       *pcapgo.NgReader // nil for pcap
	pending  *Frame           // a frame read ahead to learn the first interface
	err      error            // the error that read ahead met
}

func newFileSource(f *os.File, size int64) (*fileSource, error) {
	buf := bufio.NewReaderSize(f, 256<<10)
	head, err := buf.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w (%d bytes, shorter than any file header)", ErrTruncated, size)
	}
	s := &fileSource{file: f}
	switch binary.LittleEndian.Uint32(head) {
	case pcapMagicMicro, pcapMagicNano, swap32(pcapMagicMicro), swap32(pcapMagicNano):
		r, err := pcapgo.NewReader(buf)
		if err != nil {
			return nil, headerError("pcap", err)
		}
		s.read, s.linkType = r.ZeroCopyReadPacketData, r.LinkType()
	case pcapngMagic:
		r, err := pcapgo.NewNgReader(buf, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, headerError("pcapng", err)
		}
		s.ng, s.read = r, r.ZeroCopyReadPacketData
		// With mixed link types allowed, the reader learns the interfaces
		// as it meets them: read the first frame ahead to know the first.
		f, err := s.ReadFrame()
		if err == nil {
			s.pending = &f
		} else {
			s.err = err
		}
		if r.NInterfaces() > 0 {
			iface, _ := r.Interface(0)
			s.linkType = iface.LinkType
		}
	default:
		return nil, fmt.Errorf("%w (it starts with %q)", ErrNotCaptureFile, printable(head))
	}
	return s, nil
}

func headerError(format string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the %s file header is cut short", ErrTruncated, format)
	}
	return fmt.Errorf("%w (%s header: %v)", ErrNotCaptureFile, format, err)
}

func (s *fileSource) ReadFrame() (Frame, error) {
	if f := s.pending; f != nil {
		s.pending = nil
		return *f, nil
	}
	if err := s.err; err != nil {
		s.err = nil
		return Frame{}, err
	}
	data, ci, err := s.read()
	if err != nil {
		return Frame{}, err
	}
	lt := s.linkType
	if s.ng != nil {
		if iface, err := s.ng.Interface(ci.InterfaceIndex); err == nil {
			lt = iface.LinkType
		}
	}
	return Frame{Data: data, OrigLen: ci.Length, Time: ci.Timestamp, LinkType: lt}, nil
}

func (s *fileSource) LinkType() layers.LinkType { return s.linkType }
func (s *fileSource) Close() error              { return s.file.Close() }

func swap32(v uint32) uint32 { return v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24 }

// printable shows a file's first bytes without letting them reach a
// terminal raw.
func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}
