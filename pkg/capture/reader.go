package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/layers"
)

// Errors a caller can tell apart with errors.Is to say what to do next.
var (
	// ErrNotCaptureFile: the file is not a pcap or pcapng capture.
	ErrNotCaptureFile = errors.New("not a pcap or pcapng capture file")
	// ErrTruncated: the capture file ends in the middle of a packet.
	ErrTruncated = errors.New("capture file is truncated")
)

// SnapLen covers the largest loopback segment: with GSO one captured frame
// carries up to 64 KiB of TCP payload (an IP packet is at most 65535
// bytes, plus the link header).
const SnapLen = 65535 + 64

// Frame is one captured frame as a FrameSource read it.
type Frame struct {
	Data     []byte // valid until the next ReadFrame
	OrigLen  int    // its length on the wire (Data may be cut by the snap length)
	Time     time.Time
	LinkType layers.LinkType // how to decode Data: a pcapng file may mix link types
}

// ErrIdle is what a live FrameSource returns when nothing arrived within
// its read timeout: the Reader's loop then checks whether it should stop.
var ErrIdle = errors.New("no frame yet")

// FrameSource yields captured frames: a capture file (OpenFile) or a live
// interface (package capture/live, which needs libpcap and cgo; everything
// in this package is pure Go).
type FrameSource interface {
	// ReadFrame returns the next frame; io.EOF at the end of a file,
	// ErrIdle from a live source with nothing to read yet.
	ReadFrame() (Frame, error)
	// LinkType is the source's (first) link type, for writing its frames
	// to a file.
	LinkType() layers.LinkType
	Close() error
}

// KernelCounter is a live FrameSource whose kernel counts the frames it
// dropped because the reader was too slow.
type KernelCounter interface {
	KernelDrops() (kernel, iface uint64, err error)
}

const (
	// statsInterval is how often a live reader asks the kernel for its
	// drop counters.
	statsInterval = 100 * time.Millisecond
	// statsEvery is how often (in frames) the frame counters are published.
	statsEvery = 1024
)

// Stats are the capture's counters.
type Stats struct {
	Frames        uint64 // frames read
	Segments      uint64 // TCP segments among them
	KernelDropped uint64 // frames the kernel dropped: the reader was too slow (live only)
	IfDropped     uint64 // frames the interface dropped (live only)
}

// Reader reads TCP segments from a FrameSource, decodes each frame by its
// link type and tracks connections. Its Segments loop owns the source: it
// reads it, and closes it when the loop ends, so a Reader is used by one
// goroutine at a time.
type Reader struct {
	src      FrameSource
	linkType layers.LinkType
	decoders map[layers.LinkType]*Decoder
	tracker  *Tracker
	name     string // interface or file name, for messages
	filter   string
	// readError turns a source's read error into the one to report.
	readError func(err error, frame uint64) error

	frames, segments   uint64
	kernelDrop, ifDrop atomic.Uint64
	framesPub, segsPub atomic.Uint64
	statsAt            time.Time // when the kernel's counters were last read
	last               Frame     // the frame behind the segment just yielded
}

// NewReader reads src. name says what it is in messages; filter is the BPF
// expression a live source applies ("" for files). The decoder for src's
// link type is made now, so an unsupported one is an error here.
func NewReader(src FrameSource, name, filter string) (*Reader, error) {
	r := &Reader{src: src, linkType: src.LinkType(), decoders: map[layers.LinkType]*Decoder{}, tracker: NewTracker(), name: name, filter: filter,
		readError: func(err error, _ uint64) error { return fmt.Errorf("reading from %s: %v", name, err) }}
	if _, err := r.decoder(src.LinkType()); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reader) decoder(lt layers.LinkType) (*Decoder, error) {
	if d, ok := r.decoders[lt]; ok {
		return d, nil
	}
	d, err := NewDecoder(lt)
	if err != nil {
		return nil, err
	}
	r.decoders[lt] = d
	return d, nil
}

// LinkType is the capture's (first) link-layer type.
func (r *Reader) LinkType() layers.LinkType { return r.linkType }

// Source names what is read: the interface or the file.
func (r *Reader) Source() string { return r.name }

// Filter is the BPF expression of a live capture ("" for files).
func (r *Reader) Filter() string { return r.filter }

// Stats may be called from any goroutine. A live reader refreshes the
// kernel's counters every statsInterval while reading, and when it stops.
func (r *Reader) Stats() Stats {
	return Stats{
		Frames:        r.framesPub.Load(),
		Segments:      r.segsPub.Load(),
		KernelDropped: r.kernelDrop.Load(),
		IfDropped:     r.ifDrop.Load(),
	}
}

// Frame returns the raw frame behind the segment Segments just yielded, its
// length on the wire, and its capture time: valid only inside that
// iteration (the bytes are the capture's buffer), for writing it elsewhere.
func (r *Reader) Frame() (data []byte, origLen int, t time.Time) {
	return r.last.Data, r.last.OrigLen, r.last.Time
}

// Segments reads and annotates segments until the source ends, ctx is done,
// or the loop's body stops. A file that breaks mid-packet yields what was
// whole, then one error wrapping ErrTruncated. The source is closed when
// the loop ends, whichever way; a Reader can be iterated once.
func (r *Reader) Segments(ctx context.Context) iter.Seq2[Segment, error] {
	return func(yield func(Segment, error) bool) {
		defer r.close()
		var pkt Packet
		for {
			if err := ctx.Err(); err != nil {
				return
			}
			f, err := r.src.ReadFrame()
			switch {
			case err == nil:
			case errors.Is(err, ErrIdle):
				r.publish(false)
				continue
			case errors.Is(err, io.EOF):
				return
			default:
				yield(Segment{}, r.readError(err, r.frames+1))
				return
			}
			r.frames++
			if r.frames%statsEvery == 0 {
				r.publish(false)
			}
			dec, err := r.decoder(f.LinkType)
			if err != nil {
				continue // a pcapng interface of a link type we can't read
			}
			if err := dec.Decode(f.Data, &pkt); err != nil {
				continue
			}
			r.segments++
			seg := r.tracker.Track(&pkt, f.Time, r.frames)
			r.last = f
			if !yield(seg, nil) {
				return
			}
		}
	}
}

// publish makes the counters visible to Stats; withKernel also asks the
// kernel for its drop counts (live sources only).
func (r *Reader) publish(withKernel bool) {
	r.framesPub.Store(r.frames)
	r.segsPub.Store(r.segments)
	kc, live := r.src.(KernelCounter)
	if !live {
		return
	}
	if withKernel || time.Since(r.statsAt) >= statsInterval {
		r.statsAt = time.Now()
		if kernel, iface, err := kc.KernelDrops(); err == nil {
			r.kernelDrop.Store(kernel)
			r.ifDrop.Store(iface)
		}
	}
}

// Close closes a Reader that will not be iterated (Segments closes the
// source itself when its loop ends). It must not run during Segments.
func (r *Reader) Close() { r.close() }

func (r *Reader) close() {
	if r.src == nil {
		return
	}
	r.publish(true)
	r.src.Close()
	r.src = nil
	r.last = Frame{}
}
