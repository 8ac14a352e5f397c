// Package lessons holds the lesson texts: one Markdown file per lesson, read
// by people on a code host and by pkg/lesson, which runs them. Adding a
// lesson is adding a file here; README.md here is the format's reference,
// generated from pkg/lesson's vocabulary (and skipped when lessons load).
package lessons

import "embed"

// Files are the lesson files, embedded in the binary.
//
//go:embed *.md
var Files embed.FS
