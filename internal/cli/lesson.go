package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/tcp-playground/playground/lessons"
	"github.com/tcp-playground/playground/pkg/lesson"
	"github.com/tcp-playground/playground/pkg/timeline"
)

const lessonSynopsis = "playground lessonN [--auto] [--port N] [--iface I] [--json | --view ladder] [--no-color] [--write FILE.pcap] [--html FILE.html] [--no-kernel] [--no-process]   (or: playground lesson N)"

// lessonNumber reads "lesson3" (n from the command's name) or "lesson 3".
func lessonNumber(name string, args []string) (int, []string, error) {
	digits := strings.TrimPrefix(name, "lesson")
	if digits == "" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return 0, nil, usagef("Usage: "+lessonSynopsis, "which lesson? e.g. playground lesson 1")
		}
		digits, args = args[0], args[1:]
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n <= 0 {
		return 0, nil, usagef("Usage: "+lessonSynopsis, "%q is not a lesson number", digits)
	}
	return n, args, nil
}

// runLesson runs one lesson live.
func runLesson(ctx context.Context, env Env, name string, args []string) error {
	n, args, err := lessonNumber(name, args)
	if err != nil {
		return err
	}
	all, err := lesson.Load(lessons.Files)
	if err != nil {
		return fmt.Errorf("the embedded lessons don't parse: %v", err)
	}
	var l *lesson.Lesson
	for _, candidate := range all {
		if candidate.Number == n {
			l = candidate
		}
	}
	if l == nil {
		return usagef(fmt.Sprintf("There are lessons 1 to %d.", len(all)), "there is no lesson %d", n)
	}

	flags := flag.NewFlagSet(fmt.Sprintf("lesson%d", n), flag.ContinueOnError)
	auto := flags.Bool("auto", false, "run every step without waiting; exit 0 only when every check passed")
	port := flags.Int("port", 0, fmt.Sprintf("the server's port (default %d)", l.Server.Port))
	iface := flags.String("iface", "", "interface to capture on (default: the loopback interface)")
	out := addOutputFlags(flags, true)
	rest, err := parseFlags(env, flags, lessonSynopsis, args)
	if err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("Usage: "+lessonSynopsis, "unexpected argument %q", rest[0])
	}
	if *port < 0 || *port > 65535 {
		return usagef("Ports go from 1 to 65535.", "--port %d is out of range", *port)
	}
	if *port != 0 && *port != l.Server.Port {
		l = l.WithPort(*port)
	}

	if h, err := netip.ParseAddr(l.Server.Host); err == nil && h.IsUnspecified() {
		fmt.Fprintf(env.Stderr, "warning: lesson %d listens on %s (all addresses) to show a dual-stack socket: while it runs, any machine that can reach this one can connect to port %d\n", n, h, l.Server.Port)
	}

	// Without a terminal to answer prompts, a lesson must not wait for
	// one: it runs as --auto. Output into a pipe (| less, | head) counts as
	// no terminal too: the keyboard mode must never outlive a reader that
	// went away. With --json the prompts are not shown, so it can't wait
	// for keys.
	interactive := !*auto && !out.json && isTerminal(env.Stdin) && isTerminal(env.Stdout)
	spec := sessionSpec{iface: *iface, filter: lessonFilter(l),
		title:  fmt.Sprintf("playground lesson %d: %s", l.Number, l.Title),
		kernel: !out.noKernel, kernelPorts: lessonPorts(l), queues: true,
		noProcessLane: !l.WatchesPrograms()}
	var opts lesson.Options
	if l.Lab && *iface != "" {
		return usagef("Usage: "+lessonSynopsis, "lesson %d captures on its own link: --iface does not apply", n)
	}
	closeLab, err := prepareLab(ctx, l, &spec, &opts)
	if err != nil {
		return err
	}
	defer closeLab()
	ui := newLessonUI(env, out)
	spec.screen = ui.screen
	session, err := openSession(env, out, spec)
	if err != nil {
		return err
	}
	lessonCtx, quit := context.WithCancelCause(ctx)
	defer quit(nil)
	if interactive {
		keys, err := newKeyReader(env.Stdin.(*os.File))
		if err == nil {
			defer keys.Stop()
			ui.readKeys(lessonCtx, keys, quit)
		} else {
			interactive = false
		}
	}
	opts.Auto = !interactive
	result, err := lesson.Run(lessonCtx, l, opts, session, ui)
	// Everything the timeline showed is on screen and in the files now.
	if serr := session.Stop(env, false); err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return liveError(err)
	}
	if result.OK() {
		recordFinished(env, n)
	}
	if !interactive && !result.OK() {
		return fmt.Errorf("lesson %d: %d of %d checks passed; not seen: %s", n, result.Passed, result.Checks, strings.Join(result.Missing, "; "))
	}
	return nil
}

// prepareLab makes a lab lesson's network, as root, before the session's
// capture opens in it and root is dropped; close tears it down. For
// another lesson it does nothing. The lab's namespaces are anonymous:
// nothing of it outlives the process, however the process ends.
func prepareLab(ctx context.Context, l *lesson.Lesson, spec *sessionSpec, opts *lesson.Options) (close func(), err error) {
	if !l.Lab {
		return func() {}, nil
	}
	spec.link = newLinkFeed()
	lab, err := openLab(ctx, l.Number, spec.link)
	if err != nil {
		return nil, err
	}
	spec.lab, opts.Lab = lab, lab
	// The queues come from sock_diag in this namespace, which does not
	// see the lab's sockets; the states (a tracepoint) do.
	spec.queues = false
	return func() { lab.Close() }, nil
}

// newLessonUI is the lesson's UI on stdout, in the view the flags ask for.
func newLessonUI(env Env, out *outputFlags) *termUI {
	width := 100
	if isTerminal(env.Stdout) {
		width = terminalWidth(env.Stdout.(*os.File), 100)
	}
	styles := timeline.NewStyles(!out.json && timeline.ColorFor(env.Stdout, out.noColor))
	newView := func(w io.Writer) timeline.Summarizer { return out.screenOn(env, w) }
	return newTermUI(env.Stdout, newView, styles, width, out.json)
}

// lessonPorts are the ports the kernel lane watches for a lesson.
func lessonPorts(l *lesson.Lesson) []uint16 {
	var ports []uint16
	for _, p := range l.Ports() {
		ports = append(ports, uint16(p))
	}
	return ports
}

// lessonFilter captures every port the lesson uses.
func lessonFilter(l *lesson.Lesson) string {
	var parts []string
	for _, p := range l.Ports() {
		parts = append(parts, fmt.Sprintf("tcp port %d", p))
	}
	return strings.Join(parts, " or ")
}

// isTerminal reports whether a stream is a terminal.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
