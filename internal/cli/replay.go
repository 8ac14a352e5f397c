package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/timeline"
)

const replaySynopsis = "playground replay FILE [--json] [--no-color]"

// runReplay annotates a capture file. It needs no privileges.
func runReplay(ctx context.Context, env Env, args []string) error {
	flags := flag.NewFlagSet("replay", flag.ContinueOnError)
	asJSON := flags.Bool("json", false, "one JSON object per segment, for scripts")
	noColor := flags.Bool("no-color", false, "plain text even on a terminal (NO_COLOR does the same)")
	files, err := parseFlags(env, flags, replaySynopsis, args)
	if err != nil {
		return err
	}
	switch len(files) {
	case 0:
		return usagef("Usage: "+replaySynopsis, "replay needs a capture file (pcap or pcapng)")
	case 1:
	default:
		return usagef("Usage: "+replaySynopsis, "replay takes one capture file, got %d", len(files))
	}

	reader, err := capture.OpenFile(files[0])
	if err != nil {
		return fileError(err)
	}
	var view timeline.Renderer
	if *asJSON {
		view = timeline.NewJSONView(env.Stdout)
	} else {
		view = timeline.NewLogView(env.Stdout, timeline.NewStyles(timeline.ColorFor(env.Stdout, *noColor)), time.Time{})
	}
	var readErr error
	for seg, err := range reader.Segments(ctx) {
		if err != nil {
			readErr = err
			break
		}
		if err := view.Render(timeline.WireEvent(seg)); err != nil {
			return err
		}
	}
	if err := view.Flush(); err != nil {
		return err
	}
	if readErr != nil {
		return fileError(readErr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if st := reader.Stats(); st.Frames > 0 && st.Segments == 0 {
		fmt.Fprintf(env.Stderr, "playground: %s holds %d frames and no TCP segment\n", files[0], st.Frames)
	}
	return nil
}

// fileError turns a capture-file error into a message that says what to do.
func fileError(err error) error {
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist) && errors.As(err, &pathErr):
		return fmt.Errorf("%s: no such file", pathErr.Path)
	case errors.Is(err, capture.ErrTruncated):
		return fmt.Errorf("%v: the segments before the break were shown", err)
	case errors.Is(err, capture.ErrNotCaptureFile):
		return fmt.Errorf("%v; replay reads files written by tcpdump -w, tshark -w or Wireshark", err)
	}
	return err
}
