package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tcp-playground/playground/pkg/lesson"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// termUI shows a running lesson on a terminal (or any writer): narration,
// the Node.js and Go code side by side, the live timeline and the checks.
// With JSON set it writes only JSON lines: the timeline's events and one
// line per check.
type termUI struct {
	// mu orders writes to out: the screen's writer goroutine writes the
	// timeline, the lesson's goroutine the narration.
	mu sync.Mutex
	// promptOpen: the cursor is at the end of a prompt, waiting for a key;
	// whatever is printed next starts on a new line.
	promptOpen bool
	out        io.Writer
	styles     *timeline.Styles
	view       timeline.Renderer   // how events look: written by screen's goroutine only
	screen     *timeline.AsyncView // events on their way to view: a slow terminal can't stall the capture
	files      timeline.Renderer   // --html, fed in step with the timeline
	keys       *keyReader          // nil without an interactive terminal
	width      int
	json       bool
	total      int // steps in the lesson
}

// startScreen starts the writer of timeline lines; closeScreen stops it.
func (u *termUI) startScreen() {
	u.screen = timeline.NewAsyncView(lockedView{u}, screenQueue, func(summary string) error {
		u.mu.Lock()
		defer u.mu.Unlock()
		return timeline.SkipNote(u.view)(summary)
	})
}

func (u *termUI) closeScreen() error { return u.screen.Close() }

// lockedView writes events under the UI's lock, each on its own line.
type lockedView struct{ u *termUI }

func (l lockedView) Render(e timeline.Event) error {
	l.u.mu.Lock()
	defer l.u.mu.Unlock()
	l.u.breakPromptLocked() // a late segment while a prompt waits gets its own line
	return l.u.view.Render(e)
}

func (l lockedView) Flush() error {
	l.u.mu.Lock()
	defer l.u.mu.Unlock()
	return l.u.view.Flush()
}

func (u *termUI) printf(format string, a ...any) {
	if u.json {
		return
	}
	u.screen.Drain() // the timeline so far first, then this text
	u.mu.Lock()
	defer u.mu.Unlock()
	u.breakPromptLocked()
	fmt.Fprintf(u.out, format, a...)
}

// prompt prints text and leaves the cursor after it, for a key.
func (u *termUI) prompt(text string) {
	u.printf("%s ", text)
	u.mu.Lock()
	u.promptOpen = true
	u.mu.Unlock()
}

// endPrompt ends the prompt's line, if one is open.
func (u *termUI) endPrompt() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.breakPromptLocked()
}

func (u *termUI) breakPromptLocked() {
	if u.promptOpen && !u.json {
		fmt.Fprintln(u.out)
		u.promptOpen = false
	}
}

func (u *termUI) Lesson(l *lesson.Lesson) {
	u.total = len(l.Steps)
	u.printf("\n%s\n\n%s\n", u.styles.Paint(timeline.RoleHeading, fmt.Sprintf("Lesson %d · %s", l.Number, l.Title)), u.prose(l.Intro))
}

func (u *termUI) Step(n int, s *lesson.Step) {
	title := u.styles.Paint(timeline.RoleHeading, fmt.Sprintf("Step %d/%d · %s", n, u.total, s.Title))
	u.printf("\n%s\n\n%s\n\n%s\n", title, u.prose(s.Text), u.code(s.Node, s.Go))
}

func (u *termUI) Ask(ctx context.Context, s *lesson.Step) (lesson.Key, error) {
	hint := ""
	if s.Hint != "" {
		hint = " · h hint"
	}
	u.prompt(u.styles.Paint(timeline.RoleDim, "▶ Enter: run this step · b back a step · r show it again"+hint+" · q quit"))
	if u.keys == nil {
		u.endPrompt()
		return lesson.KeyNext, nil
	}
	u.keys.drain()
	for {
		b, ok, err := u.keys.next(ctx)
		if err != nil {
			u.endPrompt()
			return lesson.KeyQuit, err
		}
		if !ok {
			u.endPrompt()
			return lesson.KeyQuit, nil
		}
		key, known := map[byte]lesson.Key{
			'\r': lesson.KeyNext, '\n': lesson.KeyNext, ' ': lesson.KeyNext,
			'q': lesson.KeyQuit, 'Q': lesson.KeyQuit,
			'b': lesson.KeyBack, 'r': lesson.KeyRerun, 'h': lesson.KeyHint,
		}[b]
		if known {
			u.endPrompt()
			return key, nil
		}
	}
}

func (u *termUI) Predict(ctx context.Context, p *lesson.Predict) error {
	u.printf("%s %s\n", u.styles.Paint(timeline.RoleWarn, "? Predict:"), u.inline(p.Question))
	if u.keys == nil {
		return nil // --auto: the answer follows the step
	}
	u.prompt(u.styles.Paint(timeline.RoleDim, "  think of your answer, then press Enter to see what happens"))
	for {
		b, ok, err := u.keys.next(ctx)
		if err != nil || !ok {
			u.endPrompt()
			return err
		}
		if b == '\r' || b == '\n' || b == ' ' {
			u.endPrompt()
			return nil
		}
	}
}

func (u *termUI) Reveal(p *lesson.Predict) {
	u.printf("%s %s\n", u.styles.Paint(timeline.RoleWarn, "! Answer:"), u.inline(p.Answer))
}

func (u *termUI) Hint(s *lesson.Step) {
	u.printf("%s %s\n", u.styles.Paint(timeline.RoleWarn, "Hint:"), u.inline(s.Hint))
}

// Event is called from the timeline's goroutine: it must never wait for
// the terminal.
func (u *termUI) Event(e timeline.Event) error {
	if err := u.files.Render(e); err != nil {
		return err
	}
	return u.screen.Render(e)
}

// checkLine is the JSON shape of a check.
type checkLine struct {
	Time   string `json:"time"`
	Source string `json:"source"` // "lesson"
	Kind   string `json:"kind"`   // "check"
	Step   string `json:"step"`
	Expect string `json:"expect"`
	OK     bool   `json:"ok"`
}

func (u *termUI) Check(s *lesson.Step, e *lesson.Expect, ok bool) {
	if u.json {
		u.screen.Drain()
		u.mu.Lock()
		defer u.mu.Unlock()
		line, _ := json.Marshal(checkLine{Time: time.Now().UTC().Format(time.RFC3339Nano), Source: "lesson", Kind: "check", Step: s.Title, Expect: e.Display(), OK: ok})
		fmt.Fprintf(u.out, "%s\n", line)
		return
	}
	if ok {
		u.printf("  %s %s\n", u.styles.Paint(timeline.RoleGood, "✓"), e.Display())
		return
	}
	why := "(not seen)"
	if e.None {
		why = "(seen)"
	}
	u.printf("  %s %s %s\n", u.styles.Paint(timeline.RoleBad, "✗"), e.Display(), u.styles.Paint(timeline.RoleBad, why))
}

func (u *termUI) TryItYourself(ctx context.Context, addr netip.AddrPort) error {
	u.printf("\n  In another terminal, type:   %s\n  %s\n",
		u.styles.Paint(timeline.RoleInline, fmt.Sprintf("nc %s %d", addr.Addr(), addr.Port())),
		u.styles.Paint(timeline.RoleDim, "Everything it does shows up here. Press Enter (or Ctrl-C) when you are done."))
	if u.keys == nil {
		return nil
	}
	u.keys.drain()
	for {
		b, ok, err := u.keys.next(ctx)
		if err != nil || !ok || b == '\r' || b == '\n' || b == 'q' {
			return err
		}
	}
}

func (u *termUI) Done(r lesson.Result) {
	if u.json {
		return
	}
	switch {
	case r.Quit:
		u.printf("\nYou left lesson %d before its end: %d of %d checks passed so far.\n", r.Lesson, r.Passed, r.Checks)
	case r.OK():
		u.printf("\n%s Lesson %d done: all %d checks passed on the real wire.\n", u.styles.Paint(timeline.RoleGood, "✓"), r.Lesson, r.Checks)
	default:
		u.printf("\n%s Lesson %d: %d of %d checks passed. Not seen:\n", u.styles.Paint(timeline.RoleBad, "✗"), r.Lesson, r.Passed, r.Checks)
		for _, m := range r.Missing {
			u.printf("  - %s\n", m)
		}
	}
}

// prose wraps Markdown paragraphs to the terminal's width and styles
// `code` and **bold** inline.
func (u *termUI) prose(text string) string {
	var out []string
	for _, para := range strings.Split(text, "\n\n") {
		words := strings.Fields(para)
		if len(words) == 0 {
			continue
		}
		var lines []string
		line := ""
		for _, w := range words {
			if line != "" && visibleLen(line)+1+visibleLen(w) > u.width-4 {
				lines = append(lines, line)
				line = w
				continue
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		lines = append(lines, line)
		for i := range lines {
			lines[i] = "  " + u.inline(lines[i])
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	return strings.Join(out, "\n\n")
}

// inline styles `code` spans and drops Markdown's emphasis markers.
func (u *termUI) inline(s string) string {
	s = strings.ReplaceAll(s, "**", "")
	parts := strings.Split(s, "`")
	for i := 1; i < len(parts); i += 2 {
		parts[i] = u.styles.Paint(timeline.RoleInline, parts[i])
	}
	return strings.Join(parts, "")
}

// visibleLen counts what a word takes on screen: Markdown's markers don't show.
func visibleLen(s string) int {
	return utf8.RuneCountInString(strings.NewReplacer("`", "", "**", "").Replace(s))
}

// code shows the Node.js snippet beside its Go twin when the terminal is
// wide enough, one above the other when not.
func (u *termUI) code(node, goCode string) string {
	const nodeTitle, goTitle = "Node.js (your notes)", "Go (what the playground runs)"
	left := strings.Split(strings.TrimRight(strings.ReplaceAll(node, "\t", "    "), "\n"), "\n")
	right := strings.Split(strings.TrimRight(strings.ReplaceAll(goCode, "\t", "    "), "\n"), "\n")
	colWidth := utf8.RuneCountInString(nodeTitle)
	for _, l := range left {
		colWidth = max(colWidth, utf8.RuneCountInString(l))
	}
	rightWidth := utf8.RuneCountInString(goTitle)
	for _, l := range right {
		rightWidth = max(rightWidth, utf8.RuneCountInString(l))
	}
	gutter := u.styles.Paint(timeline.RoleDim, "│ ")
	var b strings.Builder
	if 2+colWidth+3+2+rightWidth <= u.width {
		pad := func(s string) string { return s + strings.Repeat(" ", colWidth-utf8.RuneCountInString(s)) }
		fmt.Fprintf(&b, "  %s   %s\n", u.styles.Paint(timeline.RoleDim, pad(nodeTitle)), u.styles.Paint(timeline.RoleDim, goTitle))
		for i := 0; i < max(len(left), len(right)); i++ {
			var l, r string
			if i < len(left) {
				l = left[i]
			}
			if i < len(right) {
				r = right[i]
			}
			fmt.Fprintf(&b, "%s%s %s%s\n", gutter, u.styles.Paint(timeline.RoleCode, pad(l)), gutter, u.styles.Paint(timeline.RoleCode, r))
		}
		return strings.TrimRight(b.String(), "\n")
	}
	for _, block := range []struct {
		title string
		lines []string
	}{{nodeTitle, left}, {goTitle, right}} {
		fmt.Fprintf(&b, "  %s\n", u.styles.Paint(timeline.RoleDim, block.title))
		for _, l := range block.lines {
			fmt.Fprintf(&b, "%s%s\n", gutter, u.styles.Paint(timeline.RoleCode, l))
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func (u *termUI) WaitOutside(ctx context.Context, addr netip.AddrPort, done <-chan struct{}) (bool, error) {
	u.printf("\n  Your turn: in another terminal, connect with a client of your own:\n    %s\n    %s\n  %s\n",
		u.styles.Paint(timeline.RoleInline, fmt.Sprintf("nc %s %d", addr.Addr(), addr.Port())),
		u.styles.Paint(timeline.RoleInline, fmt.Sprintf("node -e 'const s=require(\"net\").connect(%d,\"%s\",()=>s.end(\"hello\\n\"));s.on(\"data\",d=>console.log(String(d)))'", addr.Port(), addr.Addr())),
		u.styles.Paint(timeline.RoleDim, "Send a line and close it. This step waits for your connection; press s to skip (the playground plays your part)."))
	if u.keys == nil {
		return true, nil
	}
	u.keys.drain()
	keys := make(chan byte)
	keyCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			b, ok, err := u.keys.next(keyCtx)
			if err != nil || !ok {
				return
			}
			select {
			case keys <- b:
			case <-keyCtx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-done:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		case b := <-keys:
			if b == 's' || b == 'S' {
				return true, nil
			}
		}
	}
}
