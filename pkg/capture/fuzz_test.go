package capture

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
)

// fuzzLinkTypes are the link types the decoder reads; the fuzzer picks one
// per input by index.
var fuzzLinkTypes = []layers.LinkType{
	layers.LinkTypeEthernet, layers.LinkTypeNull, layers.LinkTypeLoop,
	layers.LinkTypeLinuxSLL, LinkTypeLinuxSLL2, layers.LinkTypeRaw,
}

// FuzzDecodeTrack feeds arbitrary frames to the decoder and the tracker:
// nothing may panic, and what comes out must be consistent. The seed corpus
// is every frame of every recorded capture, so plain `go test` runs it.
func FuzzDecodeTrack(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.pcap*")
	for _, file := range files {
		frames, _, dec := loadFrames(f, file)
		lt := byte(0)
		for i, l := range fuzzLinkTypes {
			if l == dec.LinkType() {
				lt = byte(i)
			}
		}
		for _, fr := range frames {
			f.Add(lt, fr, fr)
		}
	}
	f.Fuzz(func(t *testing.T, lt byte, frame, next []byte) {
		dec, err := NewDecoder(fuzzLinkTypes[int(lt)%len(fuzzLinkTypes)])
		if err != nil {
			t.Fatal(err)
		}
		tr := NewTracker()
		ts := time.Unix(1700000000, 0)
		// Two frames through one tracker, so state carried from one
		// segment to the next is exercised too.
		for i, fr := range [][]byte{frame, next, frame} {
			var p Packet
			if err := dec.Decode(fr, &p); err != nil {
				continue
			}
			if p.Len < 0 || !p.Src.IsValid() || !p.Dst.IsValid() {
				t.Fatalf("decoded nonsense: %+v", p)
			}
			seg := tr.Track(&p, ts.Add(time.Duration(i)*time.Millisecond), uint64(i+1))
			if len(seg.Preview()) > PreviewMax || len(seg.Preview()) > len(fr) {
				t.Fatalf("preview of %d bytes from a %d-byte frame", len(seg.Preview()), len(fr))
			}
			_ = seg.Flags.String()
			if _, err := json.Marshal(seg.Analysis.Names()); err != nil {
				t.Fatal(err)
			}
		}
	})
}
