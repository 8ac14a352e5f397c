package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/tcp-playground/playground/pkg/capture/live"
)

const watchSynopsis = "playground watch [--port N] [--iface I] [--filter EXPR] [--json | --view ladder] [--no-color] [--write FILE.pcap] [--html FILE.html] [--no-kernel] [--no-process]"

// runWatch captures live and annotates every TCP segment until Ctrl-C: for
// watching a program of the learner's own, such as the Node.js server from
// the notes.
func runWatch(ctx context.Context, env Env, args []string) error {
	flags := flag.NewFlagSet("watch", flag.ContinueOnError)
	port := flags.Int("port", 0, "only this TCP port (default: every TCP port)")
	iface := flags.String("iface", "", "interface to capture on (default: the loopback interface)")
	filter := flags.String("filter", "", "a BPF filter in tcpdump's syntax, instead of --port")
	out := addOutputFlags(flags, true)
	rest, err := parseFlags(env, flags, watchSynopsis, args)
	if err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("Usage: "+watchSynopsis, "watch takes no arguments, got %q", rest[0])
	}
	expr, err := captureFilter(*port, *filter)
	if err != nil {
		return err
	}

	spec := sessionSpec{iface: *iface, filter: expr, title: "playground watch " + expr, screen: newScreen(env, out), kernel: !out.noKernel}
	if *port != 0 {
		spec.kernelPorts = []uint16{uint16(*port)} // else every port, as the capture sees every one
	}
	session, err := openSession(env, out, spec)
	if err != nil {
		return err
	}
	// On stderr even with --json: it tells a script the capture is open.
	fmt.Fprintf(env.Stderr, "watching %s (%s): press Ctrl-C to stop\n", session.reader.Source(), session.reader.Filter())
	select {
	case <-ctx.Done():
	case <-session.Failed():
	}
	return session.Stop(env, true)
}

// captureFilter builds the BPF expression from --port and --filter.
func captureFilter(port int, filter string) (string, error) {
	switch {
	case port != 0 && filter != "":
		return "", usagef("", "--port and --filter can't be used together: put the port in the filter")
	case port < 0 || port > 65535:
		return "", usagef("Ports go from 1 to 65535.", "--port %d is out of range", port)
	case port != 0:
		return fmt.Sprintf("tcp port %d", port), nil
	}
	return filter, nil
}

// liveError says how to fix a capture that can't be opened.
func liveError(err error) error {
	switch {
	case errors.Is(err, live.ErrPermission):
		exe, _ := os.Executable()
		if exe == "" {
			exe = "playground"
		}
		return fmt.Errorf("%v: run it with sudo, or give the binary capture rights once: sudo setcap cap_net_raw,cap_net_admin=eip %s", err, exe)
	case errors.Is(err, live.ErrFilter):
		return fmt.Errorf("%v (see 'man pcap-filter' for the syntax)", err)
	}
	return err
}
