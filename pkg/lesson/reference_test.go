package lesson

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite lessons/README.md from the vocabulary")

// TestFormatReference: lessons/README.md is the reference generated from
// the vocabulary tables, so the documentation can't drift from the parser.
func TestFormatReference(t *testing.T) {
	const path = "../../lessons/README.md"
	want := Reference()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is not what the vocabulary says: run go test ./pkg/lesson -run TestFormatReference -update", path)
	}
}

// TestVocabularyParses: every entry of every table is accepted by the
// parser, with an argument of its kind.
func TestVocabularyParses(t *testing.T) {
	sample := map[argKind]string{argNone: "", argText: `"hi"`, argDuration: "10ms", argBytes: "100", argHost: "::1", argNumber: "3", argWord: "x"}
	for _, d := range actionDefs {
		a, err := ParseAction(d.name + " " + sample[d.arg])
		if err != nil || a.def == nil || a.def.name != d.name {
			t.Errorf("action %s: %v", d.name, err)
		}
	}
	for _, d := range condDefs {
		v := sample[d.arg]
		if d.values != nil {
			v = d.values[0]
		}
		source := "wire"
		if d.sources != nil {
			source = d.sources[0].String()
		}
		kind := map[string]string{"wire": "DATA", "server": "connection", "client": "read", "kernel": "state", "process": "read"}[source]
		if _, err := ParseExpect(source + " " + kind + " " + d.key + "=" + v); err != nil {
			t.Errorf("condition %s: %v", d.key, err)
		}
	}
	for _, d := range frontMatterDefs {
		v := sample[d.arg]
		switch d.key {
		case "server":
			v = "echo"
		case "link":
			v = "lab"
		}
		text := "---\nlesson: 1\ntitle: T\n" + d.key + ": " + v + "\n---\n## S\n```js\nx\n```\n```go\ny\n```\n"
		if d.key == "lesson" || d.key == "port" {
			text = "---\nlesson: 1\ntitle: T\n" + d.key + ": 7\n---\n## S\n```js\nx\n```\n```go\ny\n```\n"
		}
		if _, err := Parse("l.md", []byte(text)); err != nil {
			t.Errorf("front matter %s: %v", d.key, err)
		}
	}
}
