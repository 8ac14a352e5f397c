package lesson

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestProgressRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "playground", "progress.json")
	p, err := LoadProgress(path)
	if err != nil || len(p.Finished) != 0 {
		t.Fatalf("missing file: %+v, %v", p, err)
	}
	when := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	p.Finished[1] = when
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	again, err := LoadProgress(path)
	if err != nil || !again.Finished[1].Equal(when) {
		t.Fatalf("reloaded %+v, %v", again, err)
	}
	all := []*Lesson{{Number: 1}, {Number: 2}, {Number: 3}}
	if n := again.Next(all); n != 2 {
		t.Errorf("Next = %d, want 2", n)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want only progress.json (no temporary left)", len(entries))
	}
	os.WriteFile(path, []byte("{not json"), 0o644)
	if _, err := LoadProgress(path); err == nil {
		t.Error("a damaged file loaded without error")
	}
}

func TestProgressPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/x/state")
	if p, _ := ProgressPath(); p != "/x/state/playground/progress.json" {
		t.Errorf("with XDG_STATE_HOME: %s", p)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/learner")
	if p, _ := ProgressPath(); p != "/home/learner/.local/state/playground/progress.json" {
		t.Errorf("with HOME: %s", p)
	}
}
