package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/lesson"
	"github.com/tcp-playground/playground/pkg/netlab"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// skipUnlessLab skips when this process can't make the lab (not root, no
// /dev/net/tun); CI runs as root and fails on skips.
func skipUnlessLab(t *testing.T) {
	t.Helper()
	skipUnlessCapture(t)
	lab, err := netlab.New(context.Background(), netlab.Config{})
	if errors.Is(err, netlab.ErrPermission) || errors.Is(err, netlab.ErrUnsupported) {
		t.Skipf("the lab can't be made here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	lab.Close()
}

// labLessons are the lessons that run on a link they control.
func labLessons(t *testing.T) []*lesson.Lesson {
	all, _, _, err := loadLessons()
	if err != nil {
		t.Fatal(err)
	}
	var labs []*lesson.Lesson
	for _, l := range all {
		if l.Lab {
			labs = append(labs, l)
		}
	}
	if len(labs) == 0 {
		t.Fatal("no lesson runs on the lab")
	}
	return labs
}

// tsharkAnalysisNames are tshark's analysis fields by the names --json
// gives them (capture.Analysis.Names).
var tsharkAnalysisNames = []struct{ field, name string }{
	{"tcp.analysis.retransmission", "retransmission"},
	{"tcp.analysis.fast_retransmission", "fast retransmission"},
	{"tcp.analysis.spurious_retransmission", "spurious retransmission"},
	{"tcp.analysis.out_of_order", "out-of-order"},
	{"tcp.analysis.lost_segment", "previous segment not captured"},
	{"tcp.analysis.ack_lost_segment", "acked segment that wasn't captured"},
	{"tcp.analysis.duplicate_ack", "duplicate ack"},
	{"tcp.analysis.zero_window", "zero window"},
	{"tcp.analysis.zero_window_probe", "zero window probe"},
	{"tcp.analysis.zero_window_probe_ack", "zero window probe ack"},
	{"tcp.analysis.keep_alive", "keep-alive"},
	{"tcp.analysis.keep_alive_ack", "keep-alive ack"},
	{"tcp.analysis.window_update", "window update"},
	{"tcp.analysis.window_full", "window full"},
}

// TestLabLessonsAnalysisAgreesWithTshark runs each lab lesson with --json
// and --write: every segment's analysis remarks (retransmission, fast
// retransmission, duplicate ack...) are the ones tshark finds in the
// written capture, frame by frame, and the remarks the lessons teach are
// there.
func TestLabLessonsAnalysisAgreesWithTshark(t *testing.T) {
	skipUnlessLab(t)
	requireCommand(t, "tshark")
	for _, l := range labLessons(t) {
		t.Run(fmt.Sprintf("lesson%d", l.Number), func(t *testing.T) {
			pcapPath := filepath.Join(t.TempDir(), "lab.pcap")
			code, out, errOut := run(t, fmt.Sprintf("lesson%d", l.Number), "--auto", "--json", "--write", pcapPath)
			if code != 0 {
				t.Fatalf("exit %d: %s\n%s", code, errOut, out)
			}
			shown := map[uint64]string{}
			seen := map[string]bool{}
			links := 0
			for _, e := range parseJSONLines(t, out) {
				switch e.Source {
				case "wire":
					names := slices.Clone(e.Analysis)
					slices.Sort(names)
					shown[e.Frame] = strings.Join(names, ",")
					for _, n := range names {
						seen[n] = true
					}
				case "link":
					links++
				}
			}
			read := tsharkAnalysisByFrame(t, pcapPath)
			if len(read) != len(shown) {
				t.Errorf("tshark reads %d segments, the timeline showed %d", len(read), len(shown))
			}
			for frame, want := range read {
				if got := shown[frame]; got != want {
					t.Errorf("frame %d: the timeline says %q, tshark %q", frame, got, want)
				}
			}
			if links == 0 {
				t.Errorf("no link event on the timeline")
			}
			if l.Number != 13 && !seen["retransmission"] {
				t.Errorf("no retransmission on the timeline: %v", seen)
			}
			// Whether Wireshark calls lesson 12's resend "fast retransmission"
			// or "out-of-order" depends on how the server's ACKs were
			// spaced; the duplicate ACKs are always there.
			if l.Number == 12 && !seen["duplicate ack"] {
				t.Errorf("lesson 12 shows no duplicate ACK: %v", seen)
			}
		})
	}
}

// tsharkAnalysisByFrame is each TCP frame's analysis names, sorted and
// joined by commas, as tshark decides them.
func tsharkAnalysisByFrame(t *testing.T, path string) map[uint64]string {
	t.Helper()
	args := []string{"-n", "-r", path, "-T", "fields", "-E", "separator=\t",
		"-o", "tcp.relative_sequence_numbers:TRUE", "-o", "tcp.analyze_sequence_numbers:TRUE",
		"-o", "tcp.desegment_tcp_streams:FALSE", "-Y", "tcp", "-e", "frame.number"}
	for _, a := range tsharkAnalysisNames {
		args = append(args, "-e", a.field)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, stderr.String())
	}
	frames := map[uint64]string{}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		cols := strings.Split(line, "\t")
		frame, err := strconv.ParseUint(cols[0], 10, 64)
		if err != nil || len(cols) != 1+len(tsharkAnalysisNames) {
			t.Fatalf("tshark line %q", line)
		}
		var names []string
		for i, a := range tsharkAnalysisNames {
			if cols[1+i] != "" {
				names = append(names, a.name)
			}
		}
		slices.Sort(names)
		frames[frame] = strings.Join(names, ",")
	}
	return frames
}

// hostNetwork is what a lab must leave as it found it: named namespaces,
// interfaces, addresses, routes and firewall rules of the host.
func hostNetwork(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, c := range [][]string{{"ip", "netns"}, {"ip", "-o", "link"}, {"ip", "-o", "addr"}, {"ip", "route"}, {"ip", "-6", "route"}, {"iptables", "-S"}} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err != nil && !errors.Is(err, exec.ErrNotFound) {
			t.Logf("%s: %v", strings.Join(c, " "), err)
		}
		fmt.Fprintf(&b, "$ %s\n%s", strings.Join(c, " "), out)
	}
	return b.String()
}

// TestLabLessonInterruptedLeavesNothing interrupts lesson 11 with Ctrl-C
// while its link drops SYNs: the program ends as an interrupted lesson,
// and the host's namespaces, interfaces, routes and firewall are as
// before.
func TestLabLessonInterruptedLeavesNothing(t *testing.T) {
	skipUnlessLab(t)
	bin := buildPlayground(t)
	before := hostNetwork(t)
	cmd := exec.Command(bin, "lesson11", "--auto", "--no-color")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	var output []string
	for lines.Scan() {
		output = append(output, lines.Text())
		if strings.Contains(lines.Text(), "✕ dropped") {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	go io.Copy(io.Discard, stdout)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5 s after Ctrl-C:\n%s", strings.Join(output, "\n"))
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Errorf("exit %v, want 130", err)
	}
	if after := hostNetwork(t); after != before {
		t.Errorf("the host's network changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestLabLessonQuitLeavesNothing presses q in the middle of lesson 11's
// first step, while the client's dial waits on a link that drops its
// SYNs: the lesson ends as a quit, the lab's namespaces are gone once it
// is closed, and the host's network is as before.
func TestLabLessonQuitLeavesNothing(t *testing.T) {
	skipUnlessLab(t)
	var l11 *lesson.Lesson
	for _, l := range labLessons(t) {
		if l.Number == 11 {
			l11 = l
		}
	}
	before := hostNetwork(t)
	screen := &syncBuffer{}
	styles := timeline.NewStyles(false)
	newView := func(w io.Writer) timeline.Summarizer { return timeline.NewLogView(w, styles, time.Time{}) }
	ui := newTermUI(screen, newView, styles, 80, false)
	spec := sessionSpec{filter: lessonFilter(l11), kernel: true, kernelPorts: lessonPorts(l11)}
	var opts lesson.Options
	closeLab, err := prepareLab(context.Background(), l11, &spec, &opts)
	if err != nil {
		t.Fatal(err)
	}
	nsPaths := []string{spec.lab.ClientNamespacePath(), spec.lab.ServerNamespacePath()}
	for _, p := range nsPaths {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the lab's namespace %s: %v", p, err)
		}
	}
	spec.screen = ui.screen
	session, err := openSession(Env{Stderr: io.Discard}, &outputFlags{view: "log"}, spec)
	if err != nil {
		closeLab()
		t.Fatal(err)
	}
	ctx, quit := context.WithCancelCause(context.Background())
	defer quit(nil)
	keys := make(scriptedKeys, 4)
	ui.readKeys(ctx, keys, quit)
	keys <- '\n' // run step 1
	waitFor := func(text string) {
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(screen.String(), text) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	pressed := make(chan struct{})
	go func() {
		defer close(pressed)
		waitFor("think of your answer")
		keys <- '\n'
		waitFor("dropped") // the link is dropping the client's SYNs
		keys <- 'q'
	}()
	defer func() { <-pressed }()
	result, err := lesson.Run(ctx, l11, opts, session, ui)
	session.Stop(Env{Stderr: io.Discard}, false)
	closeLab()
	if err != nil || !result.Quit {
		t.Fatalf("result %+v, err %v:\n%s", result, err, screen.String())
	}
	for _, p := range nsPaths {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the lab's namespace %s is still there after quitting", p)
		}
	}
	if after := hostNetwork(t); after != before {
		t.Errorf("the host's network changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
