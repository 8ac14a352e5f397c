package cli

import (
	"bytes"
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
//
// Keys: one goroutine reads them. q ends the lesson at any moment (it
// cancels the lesson's context with lesson.ErrQuit); every other key waits,
// in order, for the next prompt, so keys typed or pasted ahead are kept.
type termUI struct {
	// mu orders writes to out: the screen's writer goroutine writes the
	// timeline, the lesson's goroutine the narration.
	mu sync.Mutex
	// promptOpen: the cursor is at the end of a prompt, waiting for a key;
	// whatever is printed next starts on a new line.
	promptOpen bool
	out        *transcriptWriter
	styles     *timeline.Styles
	view       timeline.Summarizer // how events look: written by the screen's goroutine only
	screen     *timeline.AsyncView // events on their way to view: a slow terminal can't stall the capture
	keys       chan byte           // keys for the prompts; nil without an interactive terminal
	width      int
	json       bool
	total      int // steps in the lesson
	steps      int // steps shown so far, for the quit message
}

// newTermUI returns a UI writing to out, width columns wide, whose screen
// shows events through the view newView makes (writing to the writer it is
// given, so that b can show a step's events again).
func newTermUI(out io.Writer, newView func(io.Writer) timeline.Summarizer, styles *timeline.Styles, width int, asJSON bool) *termUI {
	u := &termUI{out: &transcriptWriter{w: out}, styles: styles, width: width, json: asJSON}
	u.view = newView(u.out)
	u.screen = timeline.NewAsyncView(lockedView{u}, screenQueue)
	return u
}

// keySource is where key presses come from: a terminal (keyReader) or a
// test's script.
type keySource interface {
	next(ctx context.Context) (b byte, ok bool, err error)
}

// readKeys starts the goroutine that reads keys until ctx ends: q (or the
// terminal closing) calls quit; the others go to the prompts.
func (u *termUI) readKeys(ctx context.Context, src keySource, quit context.CancelCauseFunc) {
	u.keys = make(chan byte, 256)
	go func() {
		for {
			b, ok, err := src.next(ctx)
			switch {
			case err != nil:
				return
			case !ok || b == 'q' || b == 'Q':
				quit(lesson.ErrQuit)
				return
			}
			select {
			case u.keys <- b:
			default: // 256 keys ahead of the prompts: forget the rest
			}
		}
	}()
}

// key waits for the next key at a prompt.
func (u *termUI) key(ctx context.Context) (byte, error) {
	select {
	case b := <-u.keys:
		return b, nil
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	}
}

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

func (l lockedView) Summary(text string) error {
	l.u.mu.Lock()
	defer l.u.mu.Unlock()
	l.u.breakPromptLocked()
	return l.u.view.Summary(text)
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
	u.steps = n
	u.screen.Drain()
	u.mu.Lock()
	u.out.record(n) // what follows is step n as it runs, for b
	u.mu.Unlock()
	title := u.styles.Paint(timeline.RoleHeading, fmt.Sprintf("Step %d/%d · %s", n, u.total, s.Title))
	if s.Before != "" {
		u.printf("\n%s\n\n%s\n\n%s\n", title, u.prose(s.Before), u.code(s.Node, s.Go))
	} else {
		u.printf("\n%s\n\n%s\n", title, u.code(s.Node, s.Go))
	}
}

func (u *termUI) Ask(ctx context.Context, n int, s *lesson.Step) (lesson.Key, error) {
	hint := ""
	if s.Hint != "" {
		hint = " · h hint"
	}
	back := ""
	if n > 1 {
		back = " · b back"
	}
	u.prompt(u.styles.Paint(timeline.RoleDim, "▶ Enter: run step "+fmt.Sprint(n)+back+" · r show it again"+hint+" · q quit"))
	for {
		b, err := u.key(ctx)
		if err != nil {
			u.endPrompt()
			return lesson.KeyNext, err
		}
		key, known := map[byte]lesson.Key{
			'\r': lesson.KeyNext, '\n': lesson.KeyNext, ' ': lesson.KeyNext,
			'b': lesson.KeyBack, 'r': lesson.KeyShow, 'h': lesson.KeyHint,
		}[b]
		if known && (key != lesson.KeyHint || s.Hint != "") && (key != lesson.KeyBack || n > 1) {
			u.endPrompt()
			return key, nil
		}
	}
}

func (u *termUI) Hint(s *lesson.Step) {
	u.printf("%s\n", u.labelled("Hint:", s.Hint))
}

// Review shows step n again as it ran, from what was printed then.
func (u *termUI) Review(n int, s *lesson.Step) {
	if u.json {
		return
	}
	u.screen.Drain()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.breakPromptLocked()
	u.out.pause(func(w io.Writer) {
		fmt.Fprintf(w, "\n%s\n", u.styles.Paint(timeline.RoleDim, fmt.Sprintf("── looking back: step %d, as it ran ──", n)))
		w.Write(u.out.transcript(n))
		fmt.Fprintf(w, "%s\n", u.styles.Paint(timeline.RoleDim, fmt.Sprintf("── end of step %d; b goes further back, Enter runs the step you are at ──", n)))
	})
}

func (u *termUI) Predict(ctx context.Context, p *lesson.Predict) error {
	u.printf("%s\n", u.labelled("? Predict:", p.Question))
	if u.keys == nil {
		return nil // --auto: the answer follows the step
	}
	u.prompt(u.styles.Paint(timeline.RoleDim, "  think of your answer, then press Enter to see what happens (q quits)"))
	for {
		b, err := u.key(ctx)
		if err != nil {
			u.endPrompt()
			return err
		}
		if b == '\r' || b == '\n' || b == ' ' {
			u.endPrompt()
			return nil
		}
	}
}

// checkLine is the JSON shape of a check.
type checkLine struct {
	Time      string `json:"time"`
	Source    string `json:"source"` // "lesson"
	Kind      string `json:"kind"`   // "check"
	Step      string `json:"step"`
	Expect    string `json:"expect"`
	OK        bool   `json:"ok"`
	Checkable *bool  `json:"checkable,omitempty"` // false: its source can't be seen here
}

// Ran shows the checks, then the answer and the explanation.
func (u *termUI) Ran(n int, s *lesson.Step, outcomes []lesson.Outcome) {
	for i := range s.Expects {
		u.check(s, &s.Expects[i], outcomes[i])
	}
	if s.Predict != nil {
		u.printf("%s\n", u.labelled("! Answer:", s.Predict.Answer))
	}
	if s.After != "" {
		u.printf("\n%s\n", u.prose(s.After))
	}
}

func (u *termUI) check(s *lesson.Step, e *lesson.Expect, outcome lesson.Outcome) {
	ok := outcome == lesson.Passed
	if u.json {
		u.screen.Drain()
		u.mu.Lock()
		defer u.mu.Unlock()
		c := checkLine{Time: time.Now().UTC().Format(time.RFC3339Nano), Source: "lesson", Kind: "check", Step: s.Title, Expect: e.Display(), OK: ok}
		if outcome == lesson.Uncheckable {
			no := false
			c.Checkable = &no
		}
		line, _ := json.Marshal(c)
		fmt.Fprintf(u.out, "%s\n", line)
		return
	}
	if outcome == lesson.Uncheckable {
		u.printf("  %s %s %s\n", u.styles.Paint(timeline.RoleDim, "–"), e.Display(), u.styles.Paint(timeline.RoleDim, "(not checkable here: no kernel lane)"))
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
	u.printf("\n  In another terminal, type:   %s\n%s\n",
		u.styles.Paint(timeline.RoleInline, fmt.Sprintf("nc %s %d", addr.Addr(), addr.Port())),
		u.dim("Everything it does shows up here. Press Enter when you are done (q quits)."))
	if u.keys == nil {
		return nil
	}
	for {
		b, err := u.key(ctx)
		if err != nil || b == '\r' || b == '\n' {
			return err
		}
	}
}

func (u *termUI) WaitOutside(ctx context.Context, addr netip.AddrPort, done <-chan struct{}) (bool, error) {
	u.printf("\n  Your turn: in another terminal, connect with a client of your own:\n    %s\n    %s\n%s\n",
		u.styles.Paint(timeline.RoleInline, fmt.Sprintf("nc %s %d", addr.Addr(), addr.Port())),
		u.styles.Paint(timeline.RoleInline, fmt.Sprintf("node -e 'require(\"net\").connect(%d,\"%s\").end(\"hello\\n\")'", addr.Port(), addr.Addr())),
		u.dim("Send a line and close it. This step waits for your connection; press s to skip (the playground plays your part), q to quit."))
	if u.keys == nil {
		return true, nil
	}
	keyCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys := make(chan byte)
	go func() {
		for {
			b, err := u.key(keyCtx)
			if err != nil {
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
			return false, context.Cause(ctx)
		case b := <-keys:
			if b == 's' || b == 'S' {
				return true, nil
			}
		}
	}
}

func (u *termUI) Done(r lesson.Result) {
	if u.json {
		return
	}
	switch {
	case r.Quit && r.Checks == 0:
		u.printf("\nYou left lesson %d at step %d, before any step ran. Come back with the same command.\n", r.Lesson, u.steps)
	case r.Quit:
		u.printf("\nYou left lesson %d at step %d of %d: %d of %d checks passed so far.\n", r.Lesson, u.steps, u.total, r.Passed, r.Checks)
	case r.OK() && r.Uncheckable > 0:
		u.printf("\n%s Lesson %d done: all %d checks passed on the real wire; %d on the kernel's sockets could not be checked here (%s).\n",
			u.styles.Paint(timeline.RoleGood, "✓"), r.Lesson, r.Checks, r.Uncheckable, r.UncheckableWhy)
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
		lines := timeline.WrapWords(words, u.width-4, visibleLen)
		for i := range lines {
			lines[i] = "  " + u.inline(lines[i])
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	return strings.Join(out, "\n\n")
}

// labelled writes "LABEL text", the text wrapped to the terminal under
// itself.
func (u *termUI) labelled(label, text string) string {
	indent := strings.Repeat(" ", utf8.RuneCountInString(label)+1)
	lines := timeline.WrapWords(strings.Fields(text), u.width-1-len(indent), visibleLen)
	for i := range lines {
		lines[i] = indent + u.inline(lines[i])
	}
	return u.styles.Paint(timeline.RoleWarn, label) + strings.TrimPrefix(lines[0], indent[:len(indent)-1]) + joinRest(lines[1:])
}

func joinRest(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "\n" + strings.Join(lines, "\n")
}

// dim wraps a sentence to the terminal, indented, dimmed.
func (u *termUI) dim(text string) string {
	lines := strings.Split(u.prose(text), "\n")
	for i, l := range lines {
		lines[i] = u.styles.Paint(timeline.RoleDim, l)
	}
	return strings.Join(lines, "\n")
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
			// A line too long for the terminal continues on the next,
			// after a ↪, rather than wrapping mid-word at the edge.
			for first := true; first || l != ""; first = false {
				room := max(u.width-4, 20)
				piece := l
				if utf8.RuneCountInString(l) > room {
					cut := strings.LastIndex(string([]rune(l)[:room]), " ")
					if cut <= 0 {
						cut = len(string([]rune(l)[:room]))
					}
					piece, l = l[:cut], strings.TrimLeft(l[cut:], " ")
				} else {
					l = ""
				}
				mark := gutter
				if !first {
					mark = u.styles.Paint(timeline.RoleDim, "│↪")
				}
				fmt.Fprintf(&b, "%s%s\n", mark, u.styles.Paint(timeline.RoleCode, piece))
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// transcriptWriter writes through to the terminal and keeps a copy of what
// each step printed (bounded), so that b can show a step again as it ran.
// It is written under termUI.mu.
type transcriptWriter struct {
	w       io.Writer
	current int // the step being recorded; 0: none
	steps   map[int]*bytes.Buffer
	paused  bool
}

// maxTranscript bounds what is kept of one step.
const maxTranscript = 256 << 10

func (t *transcriptWriter) Write(p []byte) (int, error) {
	if !t.paused && t.current > 0 {
		if b := t.steps[t.current]; b.Len()+len(p) <= maxTranscript {
			b.Write(p)
		}
	}
	return t.w.Write(p)
}

// record starts keeping step n's output (again, if it was shown before).
func (t *transcriptWriter) record(n int) {
	if t.steps == nil {
		t.steps = map[int]*bytes.Buffer{}
	}
	t.current = n
	t.steps[n] = new(bytes.Buffer)
}

func (t *transcriptWriter) transcript(n int) []byte {
	if b := t.steps[n]; b != nil {
		return b.Bytes()
	}
	return nil
}

// pause writes without recording.
func (t *transcriptWriter) pause(write func(w io.Writer)) {
	t.paused = true
	defer func() { t.paused = false }()
	write(t)
}
