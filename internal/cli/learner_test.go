package cli

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/lesson"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// askPrompt is a step's prompt; its number says which step.
var askPrompt = regexp.MustCompile(`▶ Enter: run step (\d+)`)

// aLearner answers a lesson's prompts the way a careful learner does: at
// each step b (looking back) and r (the step again), then, after reading
// for pause, Enter; at each question, after thinking for pause, Enter;
// Enter when done trying things; s where the lesson waits for their own
// client.
func aLearner(screen *syncBuffer, keys scriptedKeys, pause time.Duration, done <-chan struct{}) {
	asked := map[string]int{} // prompt occurrences answered
	for {
		select {
		case <-done:
			return
		case <-time.After(10 * time.Millisecond):
		}
		text := screen.String()
		for _, m := range askPrompt.FindAllStringSubmatch(text, -1) {
			n, _ := strconv.Atoi(m[1])
			key := "ask " + m[1]
			if strings.Count(text, m[0]) <= asked[key] {
				continue
			}
			asked[key]++
			switch {
			case asked[key] == 1 && n > 1:
				keys <- 'b'
			case asked[key] <= 2:
				keys <- 'r'
			default:
				time.Sleep(pause)
				keys <- '\n'
			}
		}
		for prompt, key := range map[string]byte{"think of your answer": '\n', "In another terminal, type:": '\n', "This step waits for your connection": 's'} {
			if n := strings.Count(text, prompt); n > asked[prompt] {
				asked[prompt] = n
				if key == '\n' {
					time.Sleep(pause)
				}
				keys <- key
			}
		}
	}
}

// TestEveryLessonAtALearnersPace runs every lesson on the real wire in an
// 80-column terminal, with a learner who presses b and r at every step
// and reads before every key (a long while in lesson 10, whose wire
// traffic depends on time): every check passes, and no line is wider than
// the terminal.
func TestEveryLessonAtALearnersPace(t *testing.T) {
	skipUnlessCapture(t)
	all, _, _, err := loadLessons()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		t.Run(fmt.Sprintf("lesson%d", l.Number), func(t *testing.T) {
			pause := 300 * time.Millisecond
			switch l.Number {
			case 10:
				pause = 8 * time.Second // the zero-window probes back off meanwhile
			case 13:
				pause = 2 * time.Second // past the RTO: the congestion window restarts after idle
			}
			l := l.WithPort(freePort(t))
			screen := &syncBuffer{}
			styles := timeline.NewStyles(true)
			newView := func(w io.Writer) timeline.Summarizer {
				v := timeline.NewLogView(w, styles, time.Time{})
				v.SetWidth(80)
				return v
			}
			ui := newTermUI(screen, newView, styles, 80, false)
			out := &outputFlags{view: "log"}
			spec := sessionSpec{filter: lessonFilter(l), kernel: true, kernelPorts: lessonPorts(l), queues: true, noProcessLane: !l.WatchesPrograms()}
			var opts lesson.Options
			closeLab, err := prepareLab(context.Background(), l, &spec, &opts)
			if err != nil {
				t.Fatal(err)
			}
			defer closeLab()
			spec.screen = ui.screen
			session, err := openSession(Env{Stderr: io.Discard}, out, spec)
			if err != nil {
				t.Fatal(err)
			}
			ctx, quit := context.WithCancelCause(context.Background())
			defer quit(nil)
			keys := make(scriptedKeys, 64)
			ui.readKeys(ctx, keys, quit)
			done := make(chan struct{})
			go aLearner(screen, keys, pause, done)
			result, err := lesson.Run(ctx, l, opts, session, ui)
			close(done)
			if serr := session.Stop(Env{Stderr: io.Discard}, false); err == nil {
				err = serr
			}
			if err != nil || !result.OK() || result.Uncheckable != 0 {
				t.Fatalf("result %+v, err %v:\n%s", result, err, ansi.ReplaceAllString(screen.String(), ""))
			}
			checkWidth(t, screen.String(), 80)
			if n := strings.Count(screen.String(), "looking back: step"); l.Number > 1 && len(l.Steps) > 1 && n == 0 {
				t.Errorf("the learner never looked back")
			}
		})
	}
}
