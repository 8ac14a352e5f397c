// Package cli is the playground command: subcommands, flags, messages and
// exit codes. main calls Main; tests call it too, with their own streams.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitError       = 1   // the command could not do its work
	ExitUsage       = 2   // the command line was wrong
	ExitInterrupted = 130 // stopped by Ctrl-C (128 + SIGINT), as shells report it
)

// UsageError is a mistake in the command line: the message says what, and
// exit code 2 follows.
type UsageError struct {
	Msg  string
	Hint string // what to type instead, if anything
}

func (e *UsageError) Error() string { return e.Msg }

func usagef(hint, format string, a ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, a...), Hint: hint}
}

// Env is what a subcommand may touch: its streams. Nothing else in this
// package writes to the terminal.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"lesson1", "lesson 1 (any N: lessonN or lesson N); --auto runs it without stopping (needs sudo)", nil},
		{"next", "the first lesson you have not finished (needs sudo)", runNext},
		{"reset", "forget which lessons you finished", runReset},
		{"replay", "annotate a pcap or pcapng file: playground replay FILE", runReplay},
		{"watch", "annotate live TCP on loopback until Ctrl-C (needs sudo)", runWatch},
		{"serve", "the notes' full example server with the capture, until Ctrl-C (needs sudo)", runServe},
		{"list", "the lessons, with a ✓ for the ones you finished (also: playground alone)", runList},
		{"help", "show this help", runHelp},
	}
}

// Main runs the command line and returns the process's exit code. Errors are
// printed here, as one line (plus a hint for usage errors), never as a Go
// stack trace.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := Run(ctx, args, Env{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	var usage *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "Error: %s\n", usage.Msg)
		if usage.Hint != "" {
			fmt.Fprintln(stderr, usage.Hint)
		}
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	default:
		fmt.Fprintf(stderr, "playground: %s\n", oneLine(err.Error()))
		return ExitError
	}
}

// Run dispatches to a subcommand.
func Run(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return runList(ctx, env, nil)
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "-help" {
		return runHelp(ctx, env, nil)
	}
	for _, c := range commands() {
		if c.name == name && c.run != nil {
			return c.run(ctx, env, args[1:])
		}
	}
	if strings.HasPrefix(name, "lesson") {
		return runLesson(ctx, env, name, args[1:])
	}
	if strings.HasPrefix(name, "-") {
		return usagef("Run 'playground help' for the commands.", "flag %s before a command", name)
	}
	if guess := closest(name); guess != "" {
		return usagef("Run 'playground help' for the commands.", "unknown command %q; did you mean %q?", name, guess)
	}
	return usagef("Run 'playground help' for the commands.", "unknown command %q", name)
}

func runHelp(_ context.Context, env Env, _ []string) error {
	fmt.Fprint(env.Stdout, `playground: watch TCP really happen, on the wire and in your code, on one timeline.

Usage: playground COMMAND [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(env.Stdout, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(env.Stdout, `
Run 'playground COMMAND -h' for a command's flags.
`)
	return nil
}

// oneLine folds a multi-line message so an error is always one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// parseFlags parses flags that may stand before, between or after the
// positional arguments (Go's flag package stops at the first positional), and
// returns the positionals. -h prints the synopsis and flags to stdout and
// returns flag.ErrHelp; other errors become usage errors naming the command.
func parseFlags(env Env, fs *flag.FlagSet, synopsis string, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(env.Stdout, fs, synopsis)
				return nil, err
			}
			return nil, usagef(fmt.Sprintf("Run 'playground %s -h' for its flags.", fs.Name()), "%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// printUsage writes a command's usage line and flags to w.
func printUsage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: %s\n\nFlags:\n", synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// closest is the command nearest to a mistyped one (at most two edits
// away), or "".
func closest(name string) string {
	best, bestDist := "", 3
	for _, c := range commands() {
		if d := editDistance(name, c.name); d < bestDist {
			best, bestDist = c.name, d
		}
	}
	return best
}

// editDistance is Levenshtein's distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
