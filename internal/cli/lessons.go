package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tcp-playground/playground/lessons"
	"github.com/tcp-playground/playground/pkg/lesson"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// loadLessons reads the embedded lessons and the user's progress.
func loadLessons() ([]*lesson.Lesson, *lesson.Progress, string, error) {
	all, err := lesson.Load(lessons.Files)
	if err != nil {
		return nil, nil, "", fmt.Errorf("the embedded lessons don't parse: %v", err)
	}
	path, err := progressPath()
	if err != nil {
		return all, &lesson.Progress{}, "", nil
	}
	progress, err := lesson.LoadProgress(path)
	if err != nil {
		return nil, nil, "", err
	}
	return all, progress, path, nil
}

// runList is `playground` alone: the lessons, what is finished, what's next.
func runList(_ context.Context, env Env, _ []string) error {
	all, progress, _, err := loadLessons()
	if err != nil {
		return err
	}
	st := timeline.NewStyles(timeline.ColorFor(env.Stdout, false))
	fmt.Fprintf(env.Stdout, "%s\n\n", st.Paint(timeline.RoleHeading, "playground: watch TCP really happen, on the wire and in your code, on one timeline"))
	next := progress.Next(all)
	for _, l := range all {
		mark, tail := "  ", ""
		if _, done := progress.Finished[l.Number]; done {
			mark = st.Paint(timeline.RoleGood, "✓ ")
		}
		if l.Number == next {
			tail = st.Paint(timeline.RoleWarn, "  ← next")
		}
		fmt.Fprintf(env.Stdout, "  %s%2d  %s%s\n", mark, l.Number, l.Title, tail)
	}
	fmt.Fprintln(env.Stdout)
	if next != 0 {
		self := selfCommand()
		fmt.Fprintf(env.Stdout, "Start: sudo %s next   (or: sudo %s lesson %d)\n", self, self, next)
	} else {
		fmt.Fprintf(env.Stdout, "All lessons finished. Any lesson runs again: sudo %s lesson N\n", selfCommand())
	}
	fmt.Fprintf(env.Stdout, "Other commands: %s help\n", selfCommand())
	return nil
}

// runNext runs the first lesson not finished yet.
func runNext(ctx context.Context, env Env, args []string) error {
	all, progress, _, err := loadLessons()
	if err != nil {
		return err
	}
	next := progress.Next(all)
	if next == 0 {
		fmt.Fprintf(env.Stdout, "All lessons finished. Run any again with: sudo %s lesson N ('%s reset' starts over)\n", selfCommand(), selfCommand())
		return nil
	}
	return runLesson(ctx, env, fmt.Sprintf("lesson%d", next), args)
}

// runReset forgets the progress.
func runReset(_ context.Context, env Env, args []string) error {
	if len(args) > 0 {
		return usagef("Usage: playground reset", "reset takes no arguments")
	}
	path, err := progressPath()
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	fmt.Fprintf(env.Stdout, "Progress forgotten (%s): lesson 1 is next.\n", path)
	return nil
}

// recordFinished marks a lesson finished in the user's progress. Under
// sudo it runs after root was dropped, so the file is the learner's.
func recordFinished(env Env, n int) {
	path, err := lesson.ProgressPath()
	if err == nil {
		var p *lesson.Progress
		if p, err = lesson.LoadProgress(path); err == nil {
			p.Finished[n] = time.Now().UTC()
			err = p.Save(path)
		}
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "playground: could not save your progress: %v\n", err)
	}
}

// progressPath is the progress file of the learner the playground runs
// for: under sudo, before root is dropped, the invoking user's (sudo gives
// root's HOME), so that `sudo playground next` and `sudo playground reset`
// mean the learner's progress, as the lesson itself records it after the
// drop.
func progressPath() (string, error) {
	if uid := os.Getenv("SUDO_UID"); os.Geteuid() == 0 && uid != "" && uid != "0" && os.Getenv("XDG_STATE_HOME") == "" {
		if u, err := user.LookupId(uid); err == nil && u.HomeDir != "" {
			return filepath.Join(u.HomeDir, ".local", "state", "playground", "progress.json"), nil
		}
	}
	return lesson.ProgressPath()
}

// sudoPath is the secure_path Debian's sudo runs commands with: a command
// found elsewhere on the user's PATH is not found under sudo.
var sudoPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/snap/bin"}

// selfCommand is how to type this program again, also after sudo: the
// path it was started by when that had a slash (bin/playground), else its
// name when sudo finds it too, else its full path.
func selfCommand() string {
	arg0 := os.Args[0]
	if strings.Contains(arg0, "/") {
		return arg0
	}
	path, err := exec.LookPath(arg0)
	if err != nil {
		return arg0
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if slices.Contains(sudoPath, filepath.Dir(path)) {
		return filepath.Base(path)
	}
	return path
}
