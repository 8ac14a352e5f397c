package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// copyCapture replays path through OpenFile and Segments and writes every
// segment's frame to out with a Writer, as a live capture's loop would.
func copyCapture(t *testing.T, path, out string) []Segment {
	t.Helper()
	r, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := CreateWriter(out, r.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	var segs []Segment
	for seg, err := range r.Segments(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, seg)
		if err := w.WriteFrame(r.Frame()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	return segs
}

// tsharkFlagsLens is "flags len" per TCP frame of path, as tshark reads it.
func tsharkFlagsLens(t *testing.T, path string) []string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", "-n", "-r", path, "-Y", "tcp", "-T", "fields", "-e", "tcp.flags", "-e", "tcp.len")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v: %s", path, err, stderr.String())
	}
	var rows []string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		flags, length, _ := strings.Cut(line, "\t")
		if flags == "" { // the snap length cut the header before the flags
			rows = append(rows, "?")
			continue
		}
		f, err := strconv.ParseUint(flags, 0, 16)
		if err != nil {
			t.Fatalf("tshark line %q: %v", line, err)
		}
		rows = append(rows, Flags(f).String()+" "+length)
	}
	return rows
}

func TestWriterRoundTrip(t *testing.T) {
	requireTool(t, "tshark")
	dir := t.TempDir()
	for _, path := range testdataCaptures(t) {
		for _, ext := range []string{".pcap", ".pcapng"} {
			name := filepath.Base(path) + ext
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				out := filepath.Join(dir, name)
				orig := copyCapture(t, path, out)

				// tshark reads the copy: the same segments, flags and lengths.
				rows := tsharkFlagsLens(t, out)
				if len(rows) != len(orig) {
					t.Errorf("tshark reads %d TCP segments in the copy, the original has %d", len(rows), len(orig))
				}
				for i := range min(len(rows), len(orig)) {
					want := orig[i].Flags.String() + " " + strconv.Itoa(orig[i].Len)
					if orig[i].Cut == CutHeader {
						want = "?"
					}
					if rows[i] != want {
						t.Errorf("segment %d: tshark reads %q in the copy, the original is %q", i+1, rows[i], want)
					}
				}

				// And so does OpenFile, field for field.
				again := readFile(t, out)
				if len(again) != len(orig) {
					t.Fatalf("the copy has %d segments, the original %d", len(again), len(orig))
				}
				for i := range orig {
					a, b := orig[i], again[i]
					if !a.Time.Equal(b.Time) {
						t.Errorf("segment %d: time %v, was %v", i+1, b.Time, a.Time)
					}
					a.Time, b.Time = time.Time{}, time.Time{}
					if a != b {
						t.Errorf("segment %d differs:\n got %+v\nwant %+v", i+1, b, a)
					}
				}
			})
		}
	}
}

// TestWriterSLL2 checks the link type in the written headers: 276, not
// gopacket's 20.
func TestWriterSLL2(t *testing.T) {
	dir := t.TempDir()
	pcapPath := filepath.Join(dir, "sll2.pcap")
	copyCapture(t, "testdata/any-sll2.pcap", pcapPath)
	data, err := os.ReadFile(pcapPath)
	if err != nil {
		t.Fatal(err)
	}
	if lt := binary.LittleEndian.Uint32(data[20:24]); lt != 276 {
		t.Errorf("pcap header link type = %d, want 276", lt)
	}

	ngPath := filepath.Join(dir, "sll2.pcapng")
	copyCapture(t, "testdata/any-sll2.pcap", ngPath)
	data, err = os.ReadFile(ngPath)
	if err != nil {
		t.Fatal(err)
	}
	shb := int(binary.LittleEndian.Uint32(data[4:8]))
	if bt := binary.LittleEndian.Uint32(data[shb : shb+4]); bt != 1 {
		t.Fatalf("block after the section header has type %d, want 1 (interface description)", bt)
	}
	if lt := binary.LittleEndian.Uint16(data[shb+8 : shb+10]); lt != 276 {
		t.Errorf("pcapng interface link type = %d, want 276", lt)
	}
	r, err := OpenFile(ngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.LinkType() != LinkTypeLinuxSLL2 {
		t.Errorf("the copy reads back as link type %d, want %d", r.LinkType(), LinkTypeLinuxSLL2)
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := CreateWriter(filepath.Join(dir, "missing", "x.pcap"), 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CreateWriter in a missing directory: %v, want ErrNotExist", err)
	}
	for _, name := range []string{"bad.pcap", "bad.pcapng"} {
		w, err := CreateWriter(filepath.Join(dir, name), 1)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := w.WriteFrame(make([]byte, 60), 0, now); err != nil {
			t.Errorf("%s: origLen 0 means the frame's length: %v", name, err)
		}
		if err := w.WriteFrame(make([]byte, 60), 59, now); err == nil {
			t.Errorf("%s: a frame longer than its wire length was written", name)
		}
		if err := w.WriteFrame(make([]byte, 60), 60, now); err == nil {
			t.Errorf("%s: a write after an error succeeded", name)
		}
		if err := w.Close(); err == nil {
			t.Errorf("%s: Close after a failed write returned nil", name)
		}
	}
}

// TestWriterSnapLen writes a GSO-sized frame, cut and whole, and reads its
// lengths back.
func TestWriterSnapLen(t *testing.T) {
	for _, name := range []string{"big.pcap", "big.pcapng"} {
		path := filepath.Join(t.TempDir(), name)
		w, err := CreateWriter(path, 1)
		if err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, SnapLen)
		if err := w.WriteFrame(frame, SnapLen, time.Unix(1, 5)); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteFrame(frame[:100], 70000, time.Unix(2, 0)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() < SnapLen+100 {
			t.Errorf("%s is %d bytes, want more than %d", name, info.Size(), SnapLen+100)
		}
	}
}
