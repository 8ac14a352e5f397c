package lesson

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Progress is what a learner has finished. It is kept per user, in a small
// JSON file.
type Progress struct {
	// Finished maps a lesson number to when it was last finished with
	// every check passing.
	Finished map[int]time.Time `json:"finished"`
}

// ProgressPath is where a user's progress lives: $XDG_STATE_HOME/playground,
// else ~/.local/state/playground (the XDG Base Directory spec's state
// directory). Under sudo, call it after dropping root, so that HOME is the
// invoking user's.
func ProgressPath() (string, error) {
	if dir := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "playground", "progress.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the progress file: %w", err)
	}
	return filepath.Join(home, ".local", "state", "playground", "progress.json"), nil
}

// LoadProgress reads the progress file; a missing file is no progress.
func LoadProgress(path string) (*Progress, error) {
	p := &Progress{Finished: map[int]time.Time{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): 'playground reset' starts over", path, err)
	}
	if p.Finished == nil {
		p.Finished = map[int]time.Time{}
	}
	return p, nil
}

// Save writes the progress atomically: a temporary file in the same
// directory, then a rename, so a crash never leaves half a file.
func (p *Progress) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".progress-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Next is the first lesson of all not finished yet, or 0 when all are.
func (p *Progress) Next(all []*Lesson) int {
	for _, l := range all {
		if _, done := p.Finished[l.Number]; !done {
			return l.Number
		}
	}
	return 0
}
