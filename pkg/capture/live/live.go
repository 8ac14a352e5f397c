// Package live opens live captures with libpcap: the one package of the
// playground that needs cgo. It hands its frames to capture.Reader (pure
// Go), which decodes and tracks them exactly as it does a file's.
package live

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"

	"github.com/tcp-playground/playground/pkg/capture"
)

// Errors a caller can tell apart with errors.Is to say what to do next.
var (
	// ErrPermission: the process may not open a live capture.
	ErrPermission = errors.New("no permission to capture")
	// ErrNoInterface: the named interface does not exist.
	ErrNoInterface = errors.New("no such interface")
	// ErrFilter: the BPF filter expression does not compile.
	ErrFilter = errors.New("bad capture filter")
)

const (
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
)

// Options says what to capture.
type Options struct {
	// Interface to open; empty means the loopback interface (lo on Linux,
	// lo0 on macOS), found from pcap's device list.
	Interface string
	// Filter is a BPF expression (tcpdump's syntax); empty means "tcp".
	Filter string
}

// OpenLive opens a live capture whose packets reach the reader within
// blockTimeout of being captured, without losing bursts (see ringBuffer).
func Open(opts Options) (*capture.Reader, error) {
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
		func() error { return inactive.SetSnapLen(capture.SnapLen) },
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
	r, err := capture.NewReader(handleSource{handle, handle.LinkType()}, iface, filter)
	if err != nil {
		handle.Close()
		return nil, err
	}
	return r, nil
}

// handleSource reads frames from a live libpcap handle.
type handleSource struct {
	handle   *pcap.Handle
	linkType layers.LinkType // asked once: each ask is a call into C
}

func (h handleSource) ReadFrame() (capture.Frame, error) {
	data, ci, err := h.handle.ZeroCopyReadPacketData()
	switch {
	case err == nil:
		return capture.Frame{Data: data, OrigLen: ci.Length, Time: ci.Timestamp, LinkType: h.linkType}, nil
	case errors.Is(err, pcap.NextErrorTimeoutExpired):
		return capture.Frame{}, capture.ErrIdle
	case errors.Is(err, io.EOF):
		return capture.Frame{}, err
	}
	return capture.Frame{}, h.handle.Error()
}

func (h handleSource) LinkType() layers.LinkType { return h.linkType }

func (h handleSource) Close() error {
	h.handle.Close()
	return nil
}

// KernelDrops asks the kernel how many frames it dropped.
func (h handleSource) KernelDrops() (kernel, iface uint64, err error) {
	st, err := h.handle.Stats()
	if err != nil {
		return 0, 0, err
	}
	return uint64(st.PacketsDropped), uint64(st.PacketsIfDropped), nil
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
