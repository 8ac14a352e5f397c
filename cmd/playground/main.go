// Command playground is a terminal teaching playground for TCP: it runs a
// real conversation on loopback and shows the wire and the programs' own
// events on one timeline. All logic lives in internal/cli; main only wires
// signals, standard streams and the exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tcp-playground/playground/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
