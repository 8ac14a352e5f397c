package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/tcp-playground/playground/pkg/server"
	"github.com/tcp-playground/playground/pkg/timeline"
)

const serveSynopsis = "playground serve [--port N] [--host H] [--iface I] [--json | --view ladder] [--no-color] [--write FILE.pcap] [--html FILE.html] [--no-kernel] [--no-process]"

// runServe runs the full example server of the notes (it replies "Hello
// from server" to every message and logs each socket's addresses) beside
// the capture, with no narration, until Ctrl-C.
func runServe(ctx context.Context, env Env, args []string) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	port := flags.Int("port", 3000, "the port to listen on (the notes' full example uses 3000)")
	host := flags.String("host", "127.0.0.1", "the address to listen on; 0.0.0.0 or :: open it to the network")
	iface := flags.String("iface", "", "interface to capture on (default: the loopback interface)")
	out := addOutputFlags(flags, true)
	rest, err := parseFlags(env, flags, serveSynopsis, args)
	if err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("Usage: "+serveSynopsis, "serve takes no arguments, got %q", rest[0])
	}
	if *port <= 0 || *port > 65535 {
		return usagef("Ports go from 1 to 65535.", "--port %d is out of range", *port)
	}
	ip := net.ParseIP(*host)
	if ip == nil {
		return usagef("Give an IP address, such as 127.0.0.1 or ::1.", "--host %q is not an IP address", *host)
	}
	if ip.IsUnspecified() {
		fmt.Fprintf(env.Stderr, "warning: listening on %s: any machine that can reach this one can now connect to port %d\n", *host, *port)
	}

	var srv *server.Server
	listen := func(session *liveSession) error {
		var err error
		srv, err = server.Start(ctx, server.Config{
			Addr:     net.JoinHostPort(*host, strconv.Itoa(*port)),
			Behavior: server.Reply,
			Reply:    []byte("Hello from server"),
		}, func(e server.Event) { session.Add(ctx, timeline.ServerEvent(e)) })
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d is already in use by another program: choose another with --port", *port)
		}
		return err
	}
	spec := sessionSpec{iface: *iface, filter: fmt.Sprintf("tcp port %d", *port),
		title: fmt.Sprintf("playground serve on port %d", *port), screen: newScreen(env, out),
		kernel: !out.noKernel, kernelPorts: []uint16{uint16(*port)}}
	if *port < 1024 {
		spec.asRoot = listen // a port below 1024 needs root to bind: bind it before the drop
	}
	session, err := openSession(env, out, spec)
	if err != nil {
		return err
	}
	if srv == nil {
		if err := listen(session); err != nil {
			session.Stop(env, false)
			return err
		}
	}
	// On stderr even with --json: it tells a script the server is ready.
	fmt.Fprintf(env.Stderr, "serving on %s; in another terminal try: nc %s %d   (Ctrl-C stops)\n", srv.Addr(), srv.Addr().Addr(), *port)
	select {
	case <-ctx.Done():
	case <-session.Failed():
	}
	srv.Close()
	time.Sleep(2 * timeline.KernelReorderWindow) // let the last FINs reach the screen
	return session.Stop(env, true)
}
