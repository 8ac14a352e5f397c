package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
)

// Errors a caller can tell apart with errors.Is to say what to do next.
var (
	// ErrPermission: the process may not open a live capture.
	ErrPermission = errors.New("no permission to capture")
	// ErrNoInterface: the named interface does not exist.
	ErrNoInterface = errors.New("no such interface")
	// ErrFilter: the BPF filter expression does not compile.
	ErrFilter = errors.New("bad capture filter")
	// ErrNotCaptureFile: the file is not a pcap or pcapng capture.
	ErrNotCaptureFile = errors.New("not a pcap or pcapng capture file")
	// ErrTruncated: the capture file ends in the middle of a packet.
	ErrTruncated = errors.New("capture file is truncated")
)

const (
	// SnapLen covers the largest loopback segment: with GSO one captured
	// frame carries up to 64 KiB of TCP payload (an IP packet is at most
	// 65535 bytes, plus the link header).
	SnapLen = 65535 + 64
	// ringBuffer is the kernel's capture ring. Packets are packed in it
	// (TPACKET_V3: each takes its own size), so 16 MiB holds a 10 MB burst
	// of 64 KiB segments as well as thousands of handshakes while the
	// reader catches up.
	ringBuffer = 16 << 20
	// blockTimeout is how long the kernel may hold captured packets before
	// handing them over: the latency the capture adds, well inside the
	// timeline's reorder window. Why not immediate mode, which hands over
	// each packet at once: libpcap then falls back to TPACKET_V2, whose
	// ring has one fixed slot per packet sized for SnapLen. Measured with
	// bench/load.sh (1000 connections, 100 at a time): immediate mode with
	// a 64 MiB ring dropped 121 to 2866 packets and kept 128 MiB resident;
	// this setting dropped none, at 72 MiB peak, and bench/latency.sh saw
	// the same capture-to-screen delay (median 6.3 ms, p99 7.7 ms).
	blockTimeout = 2 * time.Millisecond
	// statsInterval is how often a live reader asks the kernel for its
	// drop counters.
	statsInterval = 100 * time.Millisecond
	// statsEvery is how often (in frames) the frame counters are published.
	statsEvery = 1024
)

// LiveOptions says what to capture.
type LiveOptions struct {
	// Interface to open; empty means the loopback interface (lo on Linux,
	// lo0 on macOS), found from pcap's device list.
	Interface string
	// Filter is a BPF expression (tcpdump's syntax); empty means "tcp".
	Filter string
}

// Stats are the capture's counters.
type Stats struct {
	Frames        uint64 // frames read
	Segments      uint64 // TCP segments among them
	KernelDropped uint64 // frames the kernel dropped: the reader was too slow (live only)
	IfDropped     uint64 // frames the interface dropped (live only)
}

// Reader reads TCP segments from a live interface or a capture file.
// Its Segments loop owns the pcap handle: it reads it, and closes it when
// the loop ends, so a Reader is used by one goroutine at a time.
type Reader struct {
	handle  *pcap.Handle
	decoder *Decoder
	tracker *Tracker
	live    bool
	source  string // interface or file name, for messages
	filter  string

	frames, segments   uint64
	kernelDrop, ifDrop atomic.Uint64
	framesPub, segsPub atomic.Uint64
	statsAt            time.Time // when the kernel's counters were last read
	lastFrame          []byte    // the frame behind the segment just yielded
	lastFrameOrigLen   int
	lastFrameTime      time.Time
}

// OpenLive opens a live capture whose packets reach the reader within
// blockTimeout of being captured, without losing bursts (see ringBuffer).
func OpenLive(opts LiveOptions) (*Reader, error) {
	iface := opts.Interface
	if iface == "" {
		lo, err := LoopbackInterface()
		if err != nil {
			return nil, err
		}
		iface = lo
	} else if err := checkInterface(iface); err != nil {
		return nil, err
	}
	filter := opts.Filter
	if filter == "" {
		filter = "tcp"
	}

	inactive, err := pcap.NewInactiveHandle(iface)
	if err != nil {
		return nil, liveError(iface, err)
	}
	defer inactive.CleanUp()
	for _, set := range []func() error{
		func() error { return inactive.SetSnapLen(SnapLen) },
		func() error { return inactive.SetBufferSize(ringBuffer) },
		func() error { return inactive.SetPromisc(false) },
		// Also bounds how long a read waits on an idle interface, and so
		// how long a cancelled context goes unnoticed.
		func() error { return inactive.SetTimeout(blockTimeout) },
	} {
		if err := set(); err != nil {
			return nil, liveError(iface, err)
		}
	}
	handle, err := inactive.Activate()
	if err != nil {
		return nil, liveError(iface, err)
	}
	if err := handle.SetBPFFilter(filter); err != nil {
		handle.Close()
		return nil, fmt.Errorf("%w %q: %v", ErrFilter, filter, strings.TrimSpace(err.Error()))
	}
	r, err := newReader(handle, iface, true)
	if err != nil {
		handle.Close()
		return nil, err
	}
	r.filter = filter
	return r, nil
}

// OpenFile opens a pcap or pcapng file. Reading it needs no privileges.
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
	handle, err := pcap.OpenOffline(path)
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "truncated") {
			return nil, fmt.Errorf("%s: %w (%s)", path, ErrTruncated, msg)
		}
		if strings.Contains(msg, "Permission denied") {
			return nil, fmt.Errorf("%s: permission denied", path)
		}
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotCaptureFile, msg)
	}
	r, err := newReader(handle, path, false)
	if err != nil {
		handle.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func newReader(handle *pcap.Handle, source string, live bool) (*Reader, error) {
	dec, err := NewDecoder(handle.LinkType())
	if err != nil {
		return nil, err
	}
	return &Reader{handle: handle, decoder: dec, tracker: NewTracker(), live: live, source: source}, nil
}

// LinkType is the capture's link-layer type.
func (r *Reader) LinkType() layers.LinkType { return r.decoder.LinkType() }

// Source names what is read: the interface or the file.
func (r *Reader) Source() string { return r.source }

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
	return r.lastFrame, r.lastFrameOrigLen, r.lastFrameTime
}

// Segments reads and annotates segments until the file ends, ctx is done,
// or the loop's body stops. A file that breaks mid-packet yields what was
// whole, then one error wrapping ErrTruncated. The handle is closed when the
// loop ends, whichever way; a Reader can be iterated once.
func (r *Reader) Segments(ctx context.Context) iter.Seq2[Segment, error] {
	return func(yield func(Segment, error) bool) {
		defer r.close()
		var pkt Packet
		for {
			if err := ctx.Err(); err != nil {
				return
			}
			data, ci, err := r.handle.ZeroCopyReadPacketData()
			switch {
			case err == nil:
			case errors.Is(err, pcap.NextErrorTimeoutExpired):
				r.publish(false)
				continue
			case errors.Is(err, io.EOF):
				return
			default:
				yield(Segment{}, r.readError(err))
				return
			}
			r.frames++
			if r.frames%statsEvery == 0 {
				r.publish(false)
			}
			if err := r.decoder.Decode(data, &pkt); err != nil {
				continue
			}
			r.segments++
			seg := r.tracker.Track(&pkt, ci.Timestamp, r.frames)
			r.lastFrame, r.lastFrameOrigLen, r.lastFrameTime = data, ci.Length, ci.Timestamp
			if !yield(seg, nil) {
				return
			}
		}
	}
}

func (r *Reader) readError(err error) error {
	if r.live {
		return fmt.Errorf("reading from %s: %v", r.source, r.handle.Error())
	}
	msg := r.handle.Error().Error()
	return fmt.Errorf("%s: %w: frame %d is cut short (%s)", r.source, ErrTruncated, r.frames+1, msg)
}

// publish makes the counters visible to Stats; withKernel also asks the
// kernel for its drop counts (live captures only).
func (r *Reader) publish(withKernel bool) {
	r.framesPub.Store(r.frames)
	r.segsPub.Store(r.segments)
	if !withKernel && r.live && time.Since(r.statsAt) >= statsInterval {
		withKernel = true
	}
	if withKernel && r.live {
		r.statsAt = time.Now()
		if st, err := r.handle.Stats(); err == nil {
			r.kernelDrop.Store(uint64(st.PacketsDropped))
			r.ifDrop.Store(uint64(st.PacketsIfDropped))
		}
	}
}

// Close closes a Reader that will not be iterated (Segments closes the
// handle itself when its loop ends). It must not run during Segments.
func (r *Reader) Close() { r.close() }

func (r *Reader) close() {
	if r.handle == nil {
		return
	}
	r.publish(true)
	r.handle.Close()
	r.handle = nil
	r.lastFrame = nil
}

// LoopbackInterface finds the loopback interface in pcap's device list.
func LoopbackInterface() (string, error) {
	devs, err := pcap.FindAllDevs()
	if err != nil {
		return "", fmt.Errorf("listing capture interfaces: %v", err)
	}
	const pcapIfLoopback = 0x1 // PCAP_IF_LOOPBACK
	for _, d := range devs {
		if d.Flags&pcapIfLoopback != 0 {
			return d.Name, nil
		}
	}
	for _, d := range devs {
		if d.Name == "lo" || d.Name == "lo0" {
			return d.Name, nil
		}
	}
	return "", fmt.Errorf("%w: no loopback interface among %s", ErrNoInterface, interfaceList(devs))
}

func checkInterface(name string) error {
	devs, err := pcap.FindAllDevs()
	if err != nil {
		return nil // let the open say what is wrong
	}
	for _, d := range devs {
		if d.Name == name {
			return nil
		}
	}
	return fmt.Errorf("%w %q (there are: %s)", ErrNoInterface, name, interfaceList(devs))
}

func interfaceList(devs []pcap.Interface) string {
	names := make([]string, 0, len(devs))
	for _, d := range devs {
		names = append(names, d.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none visible: capturing may need root"
	}
	return strings.Join(names, ", ")
}

// liveError maps libpcap's activation errors to the package's own.
func liveError(iface string, err error) error {
	msg := err.Error()
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "permission") || strings.Contains(lower, "not permitted"):
		return fmt.Errorf("%w on %s", ErrPermission, iface)
	case strings.Contains(lower, "no such device"):
		return fmt.Errorf("%w %q", ErrNoInterface, iface)
	}
	return fmt.Errorf("opening %s: %v", iface, msg)
}
