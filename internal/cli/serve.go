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

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/server"
	"github.com/tcp-playground/playground/pkg/timeline"
)

const serveSynopsis = "playground serve [--port N] [--host H] [--json] [--no-color] [--iface I]"

// runServe runs the full example server of the notes (it replies "Hello
// from server" to every message and logs each socket's addresses) beside
// the capture, with no narration, until Ctrl-C.
func runServe(ctx context.Context, env Env, args []string) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	port := flags.Int("port", 3000, "the port to listen on (the notes' full example uses 3000)")
	host := flags.String("host", "127.0.0.1", "the address to listen on; 0.0.0.0 or :: open it to the network")
	iface := flags.String("iface", "", "interface to capture on (default: the loopback interface)")
	asJSON := flags.Bool("json", false, "one JSON object per event, for scripts")
	noColor := flags.Bool("no-color", false, "plain text even on a terminal (NO_COLOR does the same)")
	rest, err := parseFlags(env, flags, serveSynopsis, args)
	if err != nil {
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

	reader, err := capture.OpenLive(capture.LiveOptions{Interface: *iface, Filter: fmt.Sprintf("tcp port %d", *port)})
	if err != nil {
		return liveError(err)
	}
	view := newView(env, *asJSON, *noColor)
	screen := timeline.NewAsyncView(view, screenQueue, timeline.SkipNote(view))
	live := timeline.StartLive(reader, screen.Render)
	listen := func() (*server.Server, error) {
		srv, err := server.Start(ctx, server.Config{
			Addr:     net.JoinHostPort(*host, strconv.Itoa(*port)),
			Behavior: server.Reply,
			Reply:    []byte("Hello from server"),
		}, func(e server.Event) { live.Add(ctx, timeline.ServerEvent(e)) })
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("port %d is already in use by another program: choose another with --port", *port)
		}
		return srv, err
	}
	// Give up root as soon as the capture is open; a port below 1024 still
	// needs root to bind, so that one is bound first.
	var srv *server.Server
	if *port < 1024 {
		if srv, err = listen(); err != nil {
			stopLive(env, live, screen, false)
			return err
		}
	}
	if _, err := dropPrivileges(); err != nil {
		if srv != nil {
			srv.Close()
		}
		stopLive(env, live, screen, false)
		return err
	}
	if srv == nil {
		if srv, err = listen(); err != nil {
			stopLive(env, live, screen, false)
			return err
		}
	}
	// On stderr even with --json: it tells a script the server is ready.
	fmt.Fprintf(env.Stderr, "serving on %s; in another terminal try: nc %s %d   (Ctrl-C stops)\n", srv.Addr(), srv.Addr().Addr(), *port)
	select {
	case <-ctx.Done():
	case <-live.Failed():
	}
	srv.Close()
	time.Sleep(2 * timeline.DefaultReorderWindow) // let the last FINs reach the screen
	return stopLive(env, live, screen, true)
}

// newView is the renderer for a live command: JSON lines, or the log view
// with color when the output is a terminal.
func newView(env Env, asJSON, noColor bool) timeline.Renderer {
	if asJSON {
		return timeline.NewJSONView(env.Stdout)
	}
	return timeline.NewLogView(env.Stdout, timeline.NewStyles(timeline.ColorFor(env.Stdout, noColor)), time.Time{})
}

// screenQueue is how many events may wait for a slow terminal before the
// screen summarizes instead (timeline.AsyncView).
const screenQueue = 1 << 16

// stopLive ends a live command: the capture, then the timeline, then the
// screen; with report, it says what the capture counted and what the screen
// skipped.
func stopLive(env Env, live *timeline.Live, screen *timeline.AsyncView, report bool) error {
	err := live.Stop()
	if serr := screen.Close(); err == nil {
		err = serr
	}
	if !report {
		return err
	}
	st := live.Stats()
	fmt.Fprintf(env.Stderr, "%d segments captured, %d dropped by the kernel", st.Segments, st.KernelDropped)
	if n := screen.Skipped(); n > 0 {
		fmt.Fprintf(env.Stderr, ", %d events not shown because the terminal was too slow", n)
	}
	fmt.Fprintln(env.Stderr)
	return err
}
