// Command load is the client and the counter of bench/load.sh.
//
//	load run [-addr A] [-conns N] [-parallel P] [-msgs M] [-timeout D]
//
// opens -conns connections to a `playground serve` on -addr, at most
// -parallel at a time. Each one writes -msgs short messages and, after the
// k-th, reads until it holds 17*k bytes of replies ("Hello from server" is
// 17 bytes, and replies may coalesce), then half-closes, waits for the
// server's FIN and closes. It is bounded in count and, through -timeout, in
// time. The last line on stdout is machine-readable:
// "conns=N failed=F seconds=S".
//
//	load count OUT.json ERR.txt
//
// reads serve's --json output and its stderr and prints "name=value" lines:
// wire SYN, SYN+ACK, FIN, RST; server connection, data, write, close (of a
// connection), error; skipped lines and the events they summarize; kernel
// drops from stderr; lines that are not JSON.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"sync"
	"time"
)

const reply = "Hello from server"

func main() {
	if len(os.Args) < 2 {
		fatal(errors.New("usage: load run [flags] | load count OUT.json ERR.txt"))
	}
	switch os.Args[1] {
	case "run":
		runLoad(os.Args[2:])
	case "count":
		if len(os.Args) != 4 {
			fatal(errors.New("usage: load count OUT.json ERR.txt"))
		}
		if err := count(os.Args[2], os.Args[3]); err != nil {
			fatal(err)
		}
	default:
		fatal(fmt.Errorf("unknown mode %q (run or count)", os.Args[1]))
	}
}

func runLoad(args []string) {
	flags := flag.NewFlagSet("run", flag.ExitOnError)
	addr := flags.String("addr", "127.0.0.1:4992", "the server's address")
	conns := flags.Int("conns", 1000, "connections to open in total")
	parallel := flags.Int("parallel", 100, "connections open at the same time")
	msgs := flags.Int("msgs", 3, "messages per connection")
	timeout := flags.Duration("timeout", 60*time.Second, "give up after this long")
	flags.Parse(args)
	if *conns < 1 || *parallel < 1 || *msgs < 1 {
		fatal(errors.New("-conns, -parallel and -msgs must be positive"))
	}

	deadline := time.Now().Add(*timeout)
	start := time.Now()
	jobs := make(chan int)
	errs := make(chan error, *conns)
	var wg sync.WaitGroup
	for w := 0; w < *parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				if err := client(*addr, id, *msgs, deadline); err != nil {
					errs <- fmt.Errorf("connection %d: %w", id, err)
				}
			}
		}()
	}
	for id := 0; id < *conns; id++ {
		jobs <- id
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	failed := 0
	for err := range errs {
		if failed < 3 {
			fmt.Fprintln(os.Stderr, "load:", err)
		}
		failed++
	}
	fmt.Printf("conns=%d failed=%d seconds=%.3f\n", *conns, failed, elapsed.Seconds())
}

// client runs one connection: msgs messages, each answered, then a clean
// close both ways.
func client(addr string, id, msgs int, deadline time.Time) error {
	c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	got := make([]byte, 0, len(reply)*msgs)
	buf := make([]byte, 512)
	for k := 1; k <= msgs; k++ {
		if _, err := fmt.Fprintf(c, "hello %d/%d", id, k); err != nil {
			return fmt.Errorf("write %d: %w", k, err)
		}
		for len(got) < len(reply)*k {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				return fmt.Errorf("after message %d, %d bytes of replies: %w", k, len(got), err)
			}
		}
		if len(got) > len(reply)*k {
			return fmt.Errorf("after message %d: %d bytes of replies, want %d", k, len(got), len(reply)*k)
		}
	}
	if !bytes.Equal(got, bytes.Repeat([]byte(reply), msgs)) {
		return fmt.Errorf("replies differ: %q", got)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	if n, err := io.Copy(io.Discard, c); err != nil {
		return fmt.Errorf("waiting for the server's FIN: %w", err)
	} else if n != 0 {
		return fmt.Errorf("%d unexpected bytes after the replies", n)
	}
	return nil
}

// line is what count reads from each JSON line.
type line struct {
	Source string `json:"source"`
	Kind   string `json:"kind"`
	Conn   uint64 `json:"conn"`
	Note   string `json:"note"`
}

var (
	dropsRE   = regexp.MustCompile(`(\d+) segments captured, (\d+) dropped by the kernel(?:, (\d+) events not shown)?`)
	skippedRE = regexp.MustCompile(`(\d+) events not shown`)
)

func count(outPath, errPath string) error {
	out, err := os.Open(outPath)
	if err != nil {
		return err
	}
	defer out.Close()
	c := map[string]int{}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			c["not_json"]++
			continue
		}
		c["lines"]++
		switch {
		case l.Source == "wire":
			c["wire_"+l.Kind]++
		case l.Source == "server" && l.Kind == "close" && l.Conn == 0:
			c["server_listener_close"]++
		case l.Source == "server":
			c["server_"+l.Kind]++
		case l.Source == "timeline" && l.Kind == "skipped":
			c["skipped_lines"]++
			if m := skippedRE.FindStringSubmatch(l.Note); m != nil {
				n, _ := strconv.Atoi(m[1])
				c["skipped_events"] += n
			}
		default:
			c["other"]++
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	stderr, err := os.ReadFile(errPath)
	if err != nil {
		return err
	}
	captured, drops, notShown := "missing", "missing", "0"
	if m := dropsRE.FindStringSubmatch(string(stderr)); m != nil {
		captured, drops = m[1], m[2]
		if m[3] != "" {
			notShown = m[3]
		}
	}
	for _, k := range []string{"lines", "not_json", "wire_SYN", "wire_SYN+ACK", "wire_ACK", "wire_DATA", "wire_FIN", "wire_RST",
		"server_listening", "server_connection", "server_data", "server_write", "server_close", "server_error",
		"server_listener_close", "skipped_lines", "skipped_events", "other"} {
		fmt.Printf("%s=%d\n", k, c[k])
	}
	fmt.Printf("segments_captured=%s\nkernel_drops=%s\nnot_shown_stderr=%s\n", captured, drops, notShown)
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "load:", err)
	os.Exit(2)
}
