package timeline

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcp-playground/playground/pkg/capture"
)

// TestNotesAgreeWithPackets replays every recorded capture and checks each
// note against the packets themselves, recomputed here from the segments
// (not from the tracker's Facts): a note may only claim what the capture
// shows.
func TestNotesAgreeWithPackets(t *testing.T) {
	files, _ := filepath.Glob("../capture/testdata/*.pcap*")
	if len(files) < 20 {
		t.Fatalf("found %d captures, want the full set", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r, err := capture.OpenFile(file)
			if err != nil {
				t.Fatal(err)
			}
			type dir struct {
				stream uint64
				src    string
			}
			type sent struct{ seq, end uint32 } // relative, end exclusive; SYN and FIN count one
			var (
				history  = map[dir][]sent{} // what each direction sent so far
				highest  = map[dir]uint32{} // the end of the highest data byte each direction sent
				window   = map[dir]uint64{} // each direction's last advertised window, in bytes
				wasSYN   = map[dir]bool{}   // whether each direction's last segment was a SYN
				previous = map[dir]capture.Segment{}
				reset    = map[uint64]bool{} // streams that saw an RST
			)
			for seg, err := range r.Segments(context.Background()) {
				if err != nil {
					t.Fatal(err)
				}
				if seg.Cut == capture.CutHeader {
					continue
				}
				note := SegmentNote(&seg)
				me := dir{seg.Stream, seg.Src.String()}
				peer := dir{seg.Stream, seg.Dst.String()}
				end := seg.SeqEnd()
				if seg.Flags&(capture.FlagSYN|capture.FlagFIN) != 0 {
					end++
				}
				fail := func(why string) {
					t.Errorf("frame %d (%s %s seq=%d ack=%d len=%d): note %q, but %s",
						seg.Frame, seg.Flags, seg.Kind, seg.Seq, seg.Ack, seg.Len, note, why)
				}
				if strings.Contains(note, "waiting for a missing segment") && highest[peer] <= seg.Ack {
					fail("the other side sent nothing beyond the ack: no gap")
				}
				if strings.Contains(note, "the first copy was lost") {
					before := false
					for _, s := range history[me] {
						if s.seq <= seg.Seq && seg.Seq < s.end {
							before = true
						}
					}
					if !before {
						fail("these bytes were not sent before")
					}
				}
				if strings.Contains(note, "probes a zero window") && window[peer] != 0 {
					fail("the other side's window is not zero")
				}
				if strings.Contains(note, "has room again") && (wasSYN[me] || seg.ScaledWindow() <= window[me]) {
					fail("the window did not grow (or the previous one was a SYN's, unscaled)")
				}
				if i := strings.Index(note, "confirms bytes up to "); i >= 0 {
					var n uint32
					for _, c := range note[i+len("confirms bytes up to "):] {
						if c < '0' || c > '9' {
							break
						}
						n = n*10 + uint32(c-'0')
					}
					if n >= highest[peer] && !strings.Contains(note, "the capture missed some") {
						fail("the other side was not seen sending that byte")
					}
				}
				if strings.Contains(note, "aborts the connection") && reset[seg.Stream] {
					fail("the connection was reset already")
				}
				if strings.Contains(note, "the same packet again") {
					p, ok := previous[me]
					if !ok || p.Seq != seg.Seq || p.Ack != seg.Ack || p.Flags != seg.Flags || p.Len != seg.Len {
						fail("the previous packet in this direction differs")
					}
				}

				history[me] = append(history[me], sent{seg.Seq, end})
				if seg.Len > 0 && seg.SeqEnd() > highest[me] {
					highest[me] = seg.SeqEnd()
				}
				if seg.Flags&capture.FlagRST == 0 {
					window[me] = seg.ScaledWindow()
				}
				wasSYN[me] = seg.Flags&capture.FlagSYN != 0
				previous[me] = seg
				if seg.Flags&capture.FlagRST != 0 {
					reset[seg.Stream] = true
				}
			}
		})
	}
}
