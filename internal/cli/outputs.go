package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// outputFlags are the flags of every command that shows a timeline: how the
// screen shows it, and the files it may also go to.
type outputFlags struct {
	json    bool
	noColor bool
	view    string
	html    string
	write   string // live commands only
	// noKernel leaves the kernel lane off (live commands only), and with
	// it the process lane; noProcess only the process lane.
	noKernel  bool
	noProcess bool
}

func addOutputFlags(fs *flag.FlagSet, live bool) *outputFlags {
	o := &outputFlags{}
	fs.BoolVar(&o.json, "json", false, "one JSON object per event, for scripts")
	fs.BoolVar(&o.noColor, "no-color", false, "plain text even on a terminal (NO_COLOR does the same)")
	fs.StringVar(&o.view, "view", "log", "log (one line per event) or ladder (arrows between client and server)")
	fs.StringVar(&o.html, "html", "", "also write the session as one self-contained HTML sequence diagram to this file")
	if live {
		fs.StringVar(&o.write, "write", "", "also write the captured packets to this pcap file (pcapng if it ends in .pcapng)")
		fs.BoolVar(&o.noKernel, "no-kernel", false, "leave the kernel lane (socket states and queues, from BPF) off, and the process lane")
		fs.BoolVar(&o.noProcess, "no-process", false, "leave the process lane (every program's socket calls on the port, from BPF) off")
	}
	return o
}

func (o *outputFlags) check() error {
	switch {
	case o.view != "log" && o.view != "ladder":
		return usagef("--view is log or ladder.", "--view %q is not a view", o.view)
	case o.json && o.view == "ladder":
		return usagef("", "--json and --view ladder can't be used together")
	}
	return nil
}

// screen is the renderer for stdout.
func (o *outputFlags) screen(env Env) timeline.Summarizer { return o.screenOn(env, env.Stdout) }

// screenOn is the renderer for stdout, writing through w.
func (o *outputFlags) screenOn(env Env, w io.Writer) timeline.Summarizer {
	if o.json {
		return timeline.NewJSONView(w)
	}
	styles := timeline.NewStyles(timeline.ColorFor(env.Stdout, o.noColor))
	if o.view == "ladder" {
		width := 80
		if isTerminal(env.Stdout) {
			width = terminalWidth(env.Stdout.(*os.File), 80)
		}
		return timeline.NewLadderView(w, styles, width, time.Time{})
	}
	v := timeline.NewLogView(w, styles, time.Time{})
	if isTerminal(env.Stdout) {
		v.SetWidth(terminalWidth(env.Stdout.(*os.File), 80))
	}
	return v
}

// outputFiles are the files a session also goes to. Under sudo they are
// created after root was dropped, so they belong to the learner.
type outputFiles struct {
	html     *timeline.HTMLView
	htmlFile *os.File
	pcap     *capture.Writer
	closed   bool
}

// openFiles creates the files the flags name; linkType is the capture's.
func (o *outputFlags) openFiles(linkType layers.LinkType, title string) (*outputFiles, error) {
	f := &outputFiles{}
	if o.html != "" {
		file, err := os.Create(o.html)
		if err != nil {
			return nil, fmt.Errorf("--html: %v", err)
		}
		f.htmlFile = file
		f.html = timeline.NewHTMLView(file, title)
	}
	if o.write != "" {
		w, err := capture.CreateWriter(o.write, linkType)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("--write: %v", err)
		}
		f.pcap = w
	}
	return f, nil
}

// Flush is part of timeline.Renderer; the files are written by Close.
func (f *outputFiles) Flush() error { return nil }

// Render adds an event to the HTML diagram, if there is one.
func (f *outputFiles) Render(e timeline.Event) error {
	if f == nil || f.html == nil {
		return nil
	}
	return f.html.Render(e)
}

// Frame writes a captured frame to the pcap file, if there is one.
func (f *outputFiles) Frame(data []byte, origLen int, t time.Time) error {
	if f == nil || f.pcap == nil {
		return nil
	}
	return f.pcap.WriteFrame(data, origLen, t)
}

// Close finishes the files (the HTML page is written now); it may be
// called again.
func (f *outputFiles) Close() error {
	if f == nil || f.closed {
		return nil
	}
	f.closed = true
	var errs []error
	if f.html != nil {
		errs = append(errs, f.html.Close())
	}
	if f.htmlFile != nil {
		errs = append(errs, f.htmlFile.Close())
	}
	if f.pcap != nil {
		errs = append(errs, f.pcap.Close())
	}
	return errors.Join(errs...)
}

// pendingFiles holds output files that may be opened after the timeline
// started (under sudo, once root is dropped): until then, and without
// files, events and frames go nowhere. Safe for concurrent use.
type pendingFiles struct{ p atomic.Pointer[outputFiles] }

func (f *pendingFiles) set(files *outputFiles) { f.p.Store(files) }

func (f *pendingFiles) Render(e timeline.Event) error { return f.p.Load().Render(e) }
func (f *pendingFiles) Flush() error                  { return nil }
func (f *pendingFiles) Close() error                  { return f.p.Load().Close() }

func (f *pendingFiles) Frame(data []byte, origLen int, t time.Time) error {
	return f.p.Load().Frame(data, origLen, t)
}

// tee renders to several renderers in turn.
type tee []timeline.Renderer

func (t tee) Render(e timeline.Event) error {
	for _, r := range t {
		if err := r.Render(e); err != nil {
			return err
		}
	}
	return nil
}

func (t tee) Flush() error {
	for _, r := range t {
		if err := r.Flush(); err != nil {
			return err
		}
	}
	return nil
}
