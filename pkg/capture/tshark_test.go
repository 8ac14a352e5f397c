package capture

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The fields tshark prints per frame, in this order; the analysis fields map
// to the Analysis bits that claim to follow Wireshark's rules.
var tsharkFields = []string{
	"frame.number", "tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.flags",
	"tcp.seq", "tcp.ack", "tcp.len", "tcp.window_size_value", "tcp.window_size",
}

var tsharkAnalysis = []struct {
	field string
	bit   Analysis
}{
	{"tcp.analysis.retransmission", Retransmission},
	{"tcp.analysis.fast_retransmission", FastRetransmission},
	{"tcp.analysis.spurious_retransmission", SpuriousRetransmission},
	{"tcp.analysis.out_of_order", OutOfOrder},
	{"tcp.analysis.lost_segment", LostSegment},
	{"tcp.analysis.ack_lost_segment", AckedUnseen},
	{"tcp.analysis.duplicate_ack", DuplicateAck},
	{"tcp.analysis.zero_window", ZeroWindow},
	{"tcp.analysis.zero_window_probe", ZeroWindowProbe},
	{"tcp.analysis.zero_window_probe_ack", ZeroWindowProbeAck},
	{"tcp.analysis.keep_alive", KeepAlive},
	{"tcp.analysis.keep_alive_ack", KeepAliveAck},
	{"tcp.analysis.window_update", WindowUpdate},
	{"tcp.analysis.window_full", WindowFull},
	{"tcp.analysis.reused_ports", ReusedPorts},
	{"tcp.analysis.tfo_syn", TFOSyn},
	{"tcp.analysis.tfo_ack", TFOAck},
	{"tcp.analysis.tfo_ignored", TFOIgnored},
}

// tsharkSegment is one TCP frame as tshark decodes it.
type tsharkSegment struct {
	frame, stream        uint64
	srcPort, dstPort     uint16
	flags                Flags
	seq, ack             uint32
	len                  int
	window, scaledWindow uint64
	analysis             Analysis
	headerCut            bool // tshark shows the ports only
}

func runTshark(t *testing.T, path string) map[uint64]tsharkSegment {
	t.Helper()
	requireTool(t, "tshark")
	args := []string{"-n", "-r", path, "-T", "fields", "-E", "separator=\t",
		"-o", "tcp.relative_sequence_numbers:TRUE", "-o", "tcp.analyze_sequence_numbers:TRUE",
		"-o", "tcp.desegment_tcp_streams:FALSE", "-Y", "tcp"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	for _, a := range tsharkAnalysis {
		args = append(args, "-e", a.field)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v: %s", path, err, stderr.String())
	}
	segs := make(map[uint64]tsharkSegment)
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != len(tsharkFields)+len(tsharkAnalysis) {
			t.Fatalf("tshark line has %d columns, want %d: %q", len(cols), len(tsharkFields)+len(tsharkAnalysis), line)
		}
		num := func(i int) uint64 {
			// A field can repeat (tunnels, ICMP quoting TCP); the first is the segment's own.
			v, _, _ := strings.Cut(cols[i], ",")
			n, err := strconv.ParseUint(v, 0, 64)
			if err != nil {
				t.Fatalf("tshark column %s = %q: %v (line %q)", tsharkFields[i], cols[i], err, line)
			}
			return n
		}
		if cols[1] == "" {
			// No stream: the snap length cut the TCP header before the
			// sequence number, and tshark shows only the ports.
			segs[num(0)] = tsharkSegment{frame: num(0), srcPort: uint16(num(2)), dstPort: uint16(num(3)), headerCut: true}
			continue
		}
		s := tsharkSegment{
			frame: num(0), stream: num(1), srcPort: uint16(num(2)), dstPort: uint16(num(3)),
			flags: Flags(num(4)), seq: uint32(num(5)), ack: uint32(num(6)), len: int(num(7)),
			window: num(8), scaledWindow: num(9),
		}
		for i, a := range tsharkAnalysis {
			if cols[len(tsharkFields)+i] != "" {
				s.analysis |= a.bit
			}
		}
		segs[s.frame] = s
	}
	return segs
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed (scripts/setup.sh installs it; CI fails on this skip)", name)
	}
}

// readFile replays a capture file through OpenFile and Segments.
func readFile(t testing.TB, path string) []Segment {
	t.Helper()
	r, err := OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile(%s): %v", path, err)
	}
	var segs []Segment
	for seg, err := range r.Segments(context.Background()) {
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		segs = append(segs, seg)
	}
	return segs
}

func testdataCaptures(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"testdata/*.pcap", "testdata/*.pcapng"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 10 {
		t.Fatalf("found %d captures in testdata, want the full set (scripts/record-testdata.sh makes them)", len(files))
	}
	return files
}

// TestMatchesTshark replays every recorded capture and compares each segment
// with tshark's decoding of the same frame: flags, relative seq and ack,
// payload length, window, stream index and the analysis remarks.
func TestMatchesTshark(t *testing.T) {
	for _, path := range testdataCaptures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := runTshark(t, path)
			got := readFile(t, path)
			if len(got) != len(want) {
				t.Errorf("replay found %d TCP segments, tshark %d", len(got), len(want))
			}
			mismatches := 0
			for i := range got {
				seg := &got[i]
				w, ok := want[seg.Frame]
				if !ok {
					t.Errorf("frame %d: replay has a segment, tshark none", seg.Frame)
					continue
				}
				if diff := compareWithTshark(seg, w); diff != "" {
					mismatches++
					if mismatches <= 10 {
						t.Errorf("frame %d (%s %s): %s", seg.Frame, seg.Flags, seg.Kind, diff)
					}
				}
			}
			if mismatches > 10 {
				t.Errorf("... %d frames differ in all", mismatches)
			}
		})
	}
}

func compareWithTshark(seg *Segment, w tsharkSegment) string {
	var diffs []string
	check := func(name string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			diffs = append(diffs, fmt.Sprintf("%s=%v, tshark %v", name, got, want))
		}
	}
	if w.headerCut || seg.Cut == CutHeader {
		check("header cut", seg.Cut == CutHeader, w.headerCut)
		check("srcport", seg.Src.Port(), w.srcPort)
		check("dstport", seg.Dst.Port(), w.dstPort)
		return strings.Join(diffs, "; ")
	}
	check("stream", seg.Stream, w.stream)
	check("srcport", seg.Src.Port(), w.srcPort)
	check("dstport", seg.Dst.Port(), w.dstPort)
	check("flags", seg.Flags, w.flags)
	check("seq", seg.Seq, w.seq)
	if seg.Flags&FlagACK != 0 { // without ACK tshark prints the raw field
		check("ack", seg.Ack, w.ack)
	}
	check("len", seg.Len, w.len)
	check("win", seg.Window, w.window)
	check("scaled win", seg.ScaledWindow(), w.scaledWindow)
	check("analysis", "["+seg.Analysis.String()+"]", "["+w.analysis.String()+"]")
	return strings.Join(diffs, "; ")
}
