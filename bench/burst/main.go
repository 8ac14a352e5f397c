// Command burst is the traffic generator for bench/replay-vs-tcpdump.sh.
// It runs a TCP echo server on 127.0.0.1:PORT and, in the same process, a
// client that opens -conns connections (at most -parallel at a time); each
// connection writes -msgs messages of -size bytes, reads every echo back
// before sending the next one, and closes. The workload is bounded in count
// and, through -timeout, in time: burst always stops by itself.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	port := flag.Int("port", 4990, "TCP port on 127.0.0.1")
	conns := flag.Int("conns", 300, "connections to open in total")
	msgs := flag.Int("msgs", 40, "messages per connection")
	size := flag.Int("size", 32, "bytes per message")
	parallel := flag.Int("parallel", 2, "connections open at the same time")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()
	if *conns < 1 || *msgs < 1 || *size < 1 || *parallel < 1 {
		fatal(errors.New("-conns, -msgs, -size and -parallel must be positive"))
	}

	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		fatal(err)
	}
	deadline := time.Now().Add(*timeout)
	var served sync.WaitGroup
	go serve(ln, deadline, &served)

	start := time.Now()
	jobs := make(chan int)
	errs := make(chan error, *conns)
	var clients sync.WaitGroup
	for w := 0; w < *parallel; w++ {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for id := range jobs {
				if err := client(ln.Addr().String(), id, *msgs, *size, deadline); err != nil {
					errs <- fmt.Errorf("connection %d: %w", id, err)
				}
			}
		}()
	}
	for id := 0; id < *conns; id++ {
		jobs <- id
	}
	close(jobs)
	clients.Wait()
	ln.Close()
	served.Wait() // every server side has seen EOF and closed
	close(errs)

	failed := 0
	for err := range errs {
		if failed == 0 {
			fmt.Fprintln(os.Stderr, "burst:", err)
		}
		failed++
	}
	fmt.Fprintf(os.Stderr, "burst: %d connections x %d messages of %d bytes in %.2f s, %d failed\n",
		*conns, *msgs, *size, time.Since(start).Seconds(), failed)
	if failed > 0 {
		os.Exit(1)
	}
}

// serve echoes every accepted connection until the peer closes it.
func serve(ln net.Listener, deadline time.Time, wg *sync.WaitGroup) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // listener closed
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetDeadline(deadline)
			io.Copy(c, c)
		}()
	}
}

// client runs one connection: msgs request/echo round trips, then close.
func client(addr string, id, msgs, size int, deadline time.Time) error {
	c, err := net.DialTimeout("tcp4", addr, time.Until(deadline))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	msg := bytes.Repeat([]byte{'a' + byte(id%26)}, size)
	echo := make([]byte, size)
	for i := 0; i < msgs; i++ {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, echo); err != nil {
			return err
		}
		if !bytes.Equal(echo, msg) {
			return fmt.Errorf("message %d: echo differs", i)
		}
	}
	// Half-close and wait for the server's FIN so the exchange ends cleanly.
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return err
		}
	}
	if n, err := io.Copy(io.Discard, c); err != nil {
		return err
	} else if n != 0 {
		return fmt.Errorf("%d unexpected bytes after the last echo", n)
	}
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "burst:", err)
	os.Exit(1)
}
