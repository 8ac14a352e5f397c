package lesson

import (
	"fmt"
	"strings"
)

// Reference is the lesson format's reference, as lessons/README.md holds
// it: the fixed description of a lesson file, then every front matter key,
// server, action, source and condition from the vocabulary tables.
// TestFormatReference keeps the file equal to it.
func Reference() string {
	var b strings.Builder
	b.WriteString(referenceIntro)

	b.WriteString("\n## Front matter\n\n| key | value | what it sets |\n| --- | --- | --- |\n")
	for _, d := range frontMatterDefs {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", d.key, argName(d.arg), d.doc)
	}

	b.WriteString("\n## Servers (`server:`)\n\n| server | what it does |\n| --- | --- |\n")
	for _, d := range behaviorDefs {
		fmt.Fprintf(&b, "| `%s` | %s |\n", d.name, d.doc)
	}

	b.WriteString("\n## Actions (`<!-- do: ACTION -->`)\n\nA step runs its actions in order.\n\n| action | what it does |\n| --- | --- |\n")
	for _, d := range actionDefs {
		fmt.Fprintf(&b, "| `%s%s` | %s |\n", d.name, d.arg.synopsis(), d.doc)
	}

	b.WriteString("\n## Sources and kinds (`<!-- expect: SOURCE KIND [KEY=VALUE...] -->`)\n\n| source | kinds | what it is |\n| --- | --- | --- |\n")
	for _, d := range sourceDefs {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", d.source, "`"+strings.Join(d.kinds, "`, `")+"`", d.doc)
	}

	b.WriteString("\n## Conditions\n\n| condition | value | sources | what it matches |\n| --- | --- | --- | --- |\n")
	for _, d := range condDefs {
		values := argName(d.arg)
		if d.values != nil && len(d.values) <= 6 {
			values = "`" + strings.Join(d.values, "`, `") + "`"
		}
		sources := "all"
		if d.sources != nil {
			sources = sourceList(d.sources)
		}
		fmt.Fprintf(&b, "| `%s=` | %s | %s | %s |\n", d.key, values, sources, d.doc)
	}
	for _, d := range condDefs {
		if len(d.values) > 6 {
			fmt.Fprintf(&b, "\n`%s=` is one of: `%s`.\n", d.key, strings.Join(d.values, "`, `"))
		}
	}
	return b.String()
}

func argName(k argKind) string {
	return [...]string{argNone: "none", argText: "a Go-quoted string", argDuration: "a duration (`200ms`)", argBytes: "a byte count", argHost: "an IP address", argNumber: "a number", argWord: "a word"}[k]
}

const referenceIntro = `# The lesson format

This file is generated from the vocabulary in ` + "`pkg/lesson/vocab.go`" + ` (run
` + "`go test ./pkg/lesson -run TestFormatReference -update`" + ` after changing it);
a test fails when the two differ.

A lesson is one Markdown file in this folder, readable as it is on a code host.
The playground embeds every ` + "`NN-name.md`" + ` file and runs it.

` + "````" + `markdown
---
lesson: 1
title: Creating a TCP server
server: reply
reply: "Hello from server"
port: 4000
---

# Lesson 1: Creating a TCP server

Prose before the first step is the lesson's introduction.

## A client connects: the three-way handshake

Prose here is shown before the step runs: the setup, and nothing that
answers the step's question.

` + "```" + `js
server.on("connection", (socket) => { ... });   // the Node.js code from the notes
` + "```" + `

` + "```" + `go
conn, err := ln.Accept()                        // its Go twin, what the playground runs
` + "```" + `

> **Hint:** shown when the learner presses h.

> **Predict:** Which comes first: the connection event, or the handshake?

<!-- do: dial -->
<!-- expect: wire SYN from=client step=handshake-1/3 -->
<!-- expect: server connection -->

### What happened

> **Answer:** The handshake: ...

Prose under the step's ` + "`###`" + ` heading is shown after the step ran, with the answer.
` + "````" + `

- Each ` + "`## `" + ` heading starts a step. A step needs a ` + "`js`" + ` block and a ` + "`go`" + ` block.
- ` + "`> **Predict:**`" + ` asks a question before the step runs; its ` + "`> **Answer:**`" + ` goes under the
  step's one ` + "`###`" + ` heading, with everything else that must wait until the learner has
  seen the step run. The parser refuses an answer before the heading.
- ` + "`<!-- do: ... -->`" + ` runs an action; ` + "`<!-- expect: ... -->`" + ` is an event that must be seen after the
  previous expect's; ` + "`<!-- expect-anytime: ... -->`" + ` may be seen at any time during the step;
  ` + "`<!-- expect-none: ... -->`" + ` must not be seen. Directives are HTML comments: they are the
  lesson's machinery, not its text.
- ` + "`--port N`" + ` moves the server's port and the closed port after it, everywhere the lesson
  names them.
`
