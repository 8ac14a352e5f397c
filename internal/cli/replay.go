package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/timeline"
)

const replaySynopsis = "playground replay FILE [--json | --view ladder] [--no-color] [--html FILE.html]"

// runReplay annotates a capture file. It needs no privileges.
func runReplay(ctx context.Context, env Env, args []string) error {
	flags := flag.NewFlagSet("replay", flag.ContinueOnError)
	out := addOutputFlags(flags, false)
	files, err := parseFlags(env, flags, replaySynopsis, args)
	if err != nil {
		return err
	}
	if err := out.check(); err != nil {
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
	outFiles, err := out.openFiles(reader.LinkType(), "playground replay "+filepath.Base(files[0]))
	if err != nil {
		reader.Close()
		return err
	}
	defer outFiles.Close()
	view := tee{out.screen(env), outFiles}
	var readErr error
	var cut, optionsCut, segments int
	for seg, err := range reader.Segments(ctx) {
		if err != nil {
			readErr = err
			break
		}
		segments++
		switch seg.Cut {
		case capture.CutHeader:
			cut++
		case capture.CutOptions:
			optionsCut++
		}
		if err := view.Render(timeline.WireEvent(seg)); err != nil {
			return err
		}
	}
	if err := view.Flush(); err != nil {
		return err
	}
	if err := outFiles.Close(); err != nil {
		return err
	}
	if readErr != nil {
		return fileError(readErr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Cut segments are shown, each marked; say it once where a script sees it too.
	switch {
	case cut > 0 && optionsCut > 0:
		fmt.Fprintf(env.Stderr, "playground: the snap length cut the TCP header of %d and the TCP options of %d\n  of the %d segments (tcpdump -s 0 keeps whole packets)\n", cut, optionsCut, segments)
	case cut > 0:
		fmt.Fprintf(env.Stderr, "playground: the snap length cut the TCP header of %d of the %d segments:\n  only their addresses and ports are known (tcpdump -s 0 keeps whole packets)\n", cut, segments)
	case optionsCut > 0:
		fmt.Fprintf(env.Stderr, "playground: the snap length cut the TCP options of %d of the %d segments:\n  an MSS or window scale may be unknown (tcpdump -s 0 keeps whole packets)\n", optionsCut, segments)
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
