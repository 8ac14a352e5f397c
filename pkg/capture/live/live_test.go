package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
)

// openLiveOrSkip opens a live loopback capture, skipping only when this
// process may not capture (not root, no capabilities). CI runs as root and
// turns any skip into a failure.
func openLiveOrSkip(t *testing.T, filter string) *capture.Reader {
	t.Helper()
	r, err := Open(Options{Filter: filter})
	if errors.Is(err, ErrPermission) {
		t.Skipf("live capture needs root or CAP_NET_RAW: %v", err)
	}
	if err != nil {
		t.Fatalf("OpenLive: %v", err)
	}
	return r
}

// TestLiveHandshake captures on loopback while the test makes a real
// connection, and checks the handshake, the data and the teardown.
func TestLiveHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	r := openLiveOrSkip(t, fmt.Sprintf("tcp port %d", port))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	segs := make(chan capture.Segment, 64)
	readDone := make(chan error, 1)
	go func() {
		defer close(segs)
		for seg, err := range r.Segments(ctx) {
			if err != nil {
				readDone <- err
				return
			}
			segs <- seg
		}
		readDone <- nil
	}()

	serverDone := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		if err == nil {
			_, err = c.Write(buf[:n])
		}
		io.Copy(io.Discard, c) // until the client's FIN
		serverDone <- err
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	clientAddr := netip.MustParseAddrPort(client.LocalAddr().String())
	serverAddr := netip.MustParseAddrPort(ln.Addr().String())
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if err := <-serverDone; err != nil {
		t.Fatal(err)
	}

	type want struct {
		kind     capture.Kind
		step     capture.Step
		src, dst netip.AddrPort
		len      int
	}
	wants := []want{
		{capture.KindSYN, capture.StepHandshake1, clientAddr, serverAddr, 0},
		{capture.KindSYNACK, capture.StepHandshake2, serverAddr, clientAddr, 0},
		{capture.KindACK, capture.StepHandshake3, clientAddr, serverAddr, 0},
		{capture.KindData, capture.StepNone, clientAddr, serverAddr, 5},
	}
	var got []capture.Segment
	for seg := range segs {
		got = append(got, seg)
		if seg.Step == capture.StepTeardown4 {
			cancel()
		}
	}
	if err := <-readDone; err != nil {
		t.Fatalf("reading the live capture: %v", err)
	}
	if len(got) < len(wants) {
		t.Fatalf("captured %d segments, want at least %d: %v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		if g.Kind != w.kind || g.Step != w.step || g.Src != w.src || g.Dst != w.dst || g.Len != w.len {
			t.Errorf("segment %d: %s %q %s→%s len=%d, want %s %q %s→%s len=%d",
				i, g.Kind, g.Step, g.Src, g.Dst, g.Len, w.kind, w.step, w.src, w.dst, w.len)
		}
	}
	if last := got[len(got)-1]; last.Step != capture.StepTeardown4 {
		t.Errorf("last segment is %s %q, want the teardown's final ACK", last.Kind, last.Step)
	}
	if got[3].Seq != 1 || string(got[3].Preview()) != "hello" {
		t.Errorf("data segment seq=%d preview=%q, want seq=1 \"hello\"", got[3].Seq, got[3].Preview())
	}
	if st := r.Stats(); st.KernelDropped != 0 || st.Segments != uint64(len(got)) {
		t.Errorf("stats %+v: want no drops and %d segments", st, len(got))
	}
}

// TestLiveBadFilter: a filter that doesn't compile is ErrFilter.
func TestLiveBadFilter(t *testing.T) {
	_, err := Open(Options{Filter: "tcp port"})
	if errors.Is(err, ErrPermission) {
		t.Skipf("live capture needs root: %v", err)
	}
	if !errors.Is(err, ErrFilter) {
		t.Fatalf("OpenLive with a broken filter: %v, want ErrFilter", err)
	}
}

// TestLiveUnknownInterface names the interfaces there are.
func TestLiveUnknownInterface(t *testing.T) {
	_, err := Open(Options{Interface: "nosuch0"})
	if !errors.Is(err, ErrNoInterface) {
		t.Fatalf("OpenLive(nosuch0): %v, want ErrNoInterface", err)
	}
}
