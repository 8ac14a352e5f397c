package netlab

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkForwardTCP pushes a TCP stream from the client namespace to the
// server namespace through a perfect link. The process's CPU per forwarded
// packet includes everything this process does: the two TCP stacks (their
// system calls run here), the TUN reads and writes, and the link's Go code.
func BenchmarkForwardTCP(b *testing.B) {
	lab := newLab(b, Config{})
	done := make(chan int64, 1)
	to := serve(b, lab, ServerAddr(), func(c *net.TCPConn) {
		n, _ := io.Copy(io.Discard, c)
		done <- n
	})
	c := mustDial(b, lab, to)
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	before := lab.Stats()
	cpu := cpuTime()
	start := time.Now()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	c.CloseWrite()
	<-done
	b.StopTimer()
	elapsed, cpu := time.Since(start), cpuTime()-cpu
	after := lab.Stats()
	pkts := after.ClientToServer.Forwarded + after.ServerToClient.Forwarded -
		before.ClientToServer.Forwarded - before.ServerToClient.Forwarded
	b.ReportMetric(float64(pkts)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(pkts), "cpu-ns/pkt")
}

// BenchmarkPipe is the link's own cost per packet, without system calls:
// parse, rules, a random draw, the decision, and the write (a no-op here).
func BenchmarkPipe(b *testing.B) {
	for _, bc := range []struct {
		name string
		link Link
	}{
		{"perfect", Link{}},
		{"rule+loss", Link{Rules: []Rule{DropAll(ClientToServer, MatchSYN)}, ClientToServer: Impairment{Loss: 0.01}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := newPipe(ClientToServer, serverPrefix4.Masked().Contains, func([]byte) error { return nil }, nil, 1)
			c2s, _, _ := ruleStates(bc.link.Rules)
			p.set(bc.link.ClientToServer, c2s, 1)
			seg := segment(FlagACK|FlagPSH, 1, 1448)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				p.handle(seg, now)
			}
		})
	}
}
