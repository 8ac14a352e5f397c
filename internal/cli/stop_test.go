package cli

import (
	"bufio"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCtrlCStopsWithinASecond interrupts the binary mid-lesson and
// mid-capture: it ends within a second, with the conventional exit code
// (130 for an interrupted lesson, 0 for watch, which runs until Ctrl-C) and
// no stack trace.
func TestCtrlCStopsWithinASecond(t *testing.T) {
	skipUnlessCapture(t)
	bin := buildPlayground(t)
	tests := []struct {
		name    string
		args    []string
		readyOn string // a line of stdout or stderr that says it is in the middle
		code    int
	}{
		{"mid-lesson", []string{"lesson10", "--auto", "--no-color"}, "Step 2/", 130},
		{"watch", []string{"watch"}, "watching", 0},
		{"serve", []string{"serve"}, "serving on", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, append(tt.args, "--port", strconv.Itoa(freePort(t)))...)
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = cmd.Stdout // one stream to watch for readyOn
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := bufio.NewScanner(stdout)
			var output []string
			for lines.Scan() {
				output = append(output, lines.Text())
				if strings.Contains(lines.Text(), tt.readyOn) {
					break
				}
			}
			cmd.Process.Signal(syscall.SIGINT)
			sent := time.Now()
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				for lines.Scan() {
					output = append(output, lines.Text())
				}
			}()
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			var err error
			select {
			case err = <-waited:
			case <-time.After(5 * time.Second):
				t.Fatalf("still running 5 s after Ctrl-C")
			}
			took := time.Since(sent)
			<-drained // the pipe closed with the process: output is complete
			if took > time.Second {
				t.Errorf("took %v to stop after Ctrl-C, want under a second", took)
			}
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			}
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if all := strings.Join(output, "\n"); strings.Contains(all, "goroutine ") || strings.Contains(all, "panic") {
				t.Errorf("stack trace:\n%s", all)
			}
		})
	}
}

// TestLessonWithoutTerminal: with stdin closed or not a terminal and no
// --auto, a lesson must not hang waiting for keys: it runs as --auto.
func TestLessonWithoutTerminal(t *testing.T) {
	skipUnlessCapture(t)
	code, out, errOut := run(t, "lesson1", "--no-color", "--port", strconv.Itoa(freePort(t)))
	if code != 0 || !strings.Contains(out, "all 23 checks passed") {
		t.Errorf("exit %d, stderr %q:\n%s", code, errOut, out)
	}
}
