package capture

import (
	"testing"
	"time"

	"github.com/google/gopacket/pcap"
)

// loadFrames reads a capture's raw frames into memory, so that a benchmark
// measures decoding and tracking, not file reading.
func loadFrames(tb testing.TB, path string) (frames [][]byte, times []time.Time, dec *Decoder) {
	tb.Helper()
	h, err := pcap.OpenOffline(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer h.Close()
	dec, err = NewDecoder(h.LinkType())
	if err != nil {
		tb.Fatal(err)
	}
	for {
		data, ci, err := h.ReadPacketData()
		if err != nil {
			break
		}
		frames = append(frames, data)
		times = append(times, ci.Timestamp)
	}
	if len(frames) == 0 {
		tb.Fatalf("%s: no frames", path)
	}
	return frames, times, dec
}

// BenchmarkDecodeTrack decodes and annotates the frames of a transfer with
// loss, over and over. Steady state must not allocate: run with -benchmem
// and see 0 allocs/op (TestDecodeTrackAllocs checks it too).
func BenchmarkDecodeTrack(b *testing.B) {
	frames, times, dec := loadFrames(b, "testdata/loss.pcap")
	tr := NewTracker()
	var p Packet
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := i % len(frames)
		if err := dec.Decode(frames[n], &p); err != nil {
			continue
		}
		seg := tr.Track(&p, times[n], uint64(n+1))
		_ = seg
	}
}

// TestDecodeTrackAllocs: once a connection is known, decoding and tracking
// a segment allocates nothing.
func TestDecodeTrackAllocs(t *testing.T) {
	for _, file := range []string{"testdata/loss.pcap", "testdata/ipv6.pcap", "testdata/nc-hello-null.pcap", "testdata/any-sll2.pcap"} {
		frames, times, dec := loadFrames(t, file)
		tr := NewTracker()
		var p Packet
		warm := func() {
			for n := range frames {
				if dec.Decode(frames[n], &p) == nil {
					tr.Track(&p, times[n], uint64(n+1))
				}
			}
		}
		warm()
		if allocs := testing.AllocsPerRun(5, warm); allocs != 0 {
			t.Errorf("%s: %.1f allocations per pass over %d frames, want 0", file, allocs, len(frames))
		}
	}
}
