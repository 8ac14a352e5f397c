package lesson

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/tcp-playground/playground/pkg/server"
	"github.com/tcp-playground/playground/pkg/timeline"
)

// Parse reads one lesson file. Errors name the file and line.
func Parse(name string, data []byte) (*Lesson, error) {
	l := &Lesson{File: path.Base(name), Server: ServerSpec{Behavior: server.Reply, Port: 4000}}
	p := &parser{lesson: l, file: l.File}
	if err := p.parse(data); err != nil {
		return nil, err
	}
	if err := checkLab(l); err != nil {
		return nil, fmt.Errorf("%s: %w", l.File, err)
	}
	return l, nil
}

// checkLab refuses what a lesson can't do without the lab, or in it: the
// link's actions need `link: lab`, and the lab has its own addresses.
func checkLab(l *Lesson) error {
	if l.Lab && l.Server.Host != "" {
		return errors.New("host: a lab lesson's server has the lab's address")
	}
	for _, s := range l.Steps {
		for _, a := range s.Actions {
			if strings.HasPrefix(a.Verb, "link-") && !l.Lab {
				return fmt.Errorf("step %q: %s needs `link: lab` in the front matter", s.Title, a.Verb)
			}
			if a.Verb == "link-drop-data" && a.num == 0 {
				return fmt.Errorf("step %q: link-drop-data counts segments from 1", s.Title)
			}
			if a.Verb == "dial" && a.host != "" && l.Lab {
				return fmt.Errorf("step %q: dial HOST: a lab lesson's client dials the lab's server address", s.Title)
			}
		}
	}
	return nil
}

type parser struct {
	lesson *Lesson
	file   string
	line   int
	step   *Step // the step being read; nil in the intro
	after  bool  // past the step's "### " heading: prose shown after it ran
	prose  strings.Builder
	fence  string // the language of the open code block, "" when none is open
	code   strings.Builder
	quote  *string // the Predict/Answer/Hint blockquote being read
}

func (p *parser) errorf(format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", p.file, p.line, fmt.Sprintf(format, a...))
}

// The visible blocks a step's teaching is written in, as Markdown
// blockquotes that any code host or editor preview shows.
const (
	predictMark = "> **Predict:**"
	answerMark  = "> **Answer:**"
	hintMark    = "> **Hint:**"
)

func (p *parser) parse(data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	inFront := false
	for sc.Scan() {
		p.line++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if p.quote != nil && !strings.HasPrefix(trimmed, ">") {
			p.quote = nil // a blockquote ends at the first line not in it
		}
		switch {
		case p.line == 1 && line == "---":
			inFront = true
		case inFront && line == "---":
			inFront = false
		case inFront:
			if err := p.frontMatter(line); err != nil {
				return err
			}
		case p.fence != "":
			if trimmed == "```" {
				if err := p.closeFence(); err != nil {
					return err
				}
				continue
			}
			p.code.WriteString(line + "\n")
		case strings.HasPrefix(line, "```"):
			p.fence = strings.TrimSpace(strings.TrimPrefix(line, "```"))
			if p.fence == "" {
				p.fence = "text"
			}
			p.code.Reset()
		case strings.HasPrefix(line, "## "):
			p.endProse()
			p.lesson.Steps = append(p.lesson.Steps, Step{Title: strings.TrimSpace(line[3:]), Line: p.line})
			p.step, p.after = &p.lesson.Steps[len(p.lesson.Steps)-1], false
		case strings.HasPrefix(line, "### "):
			if p.step == nil {
				return p.errorf("a ### heading before the first step")
			}
			if p.after {
				return p.errorf("step %q has two ### headings: one starts what is shown after it ran", p.step.Title)
			}
			p.endProse()
			p.after = true
		case strings.HasPrefix(line, "# "):
			// The lesson's heading: the title comes from the front matter.
		case strings.HasPrefix(trimmed, "<!--"):
			if err := p.directive(trimmed); err != nil {
				return err
			}
		case strings.HasPrefix(trimmed, predictMark), strings.HasPrefix(trimmed, answerMark), strings.HasPrefix(trimmed, hintMark):
			if err := p.startQuote(trimmed); err != nil {
				return err
			}
		case p.quote != nil:
			*p.quote = strings.TrimSpace(*p.quote + " " + strings.TrimSpace(strings.TrimPrefix(trimmed, ">")))
		default:
			p.prose.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %v", p.file, err)
	}
	if inFront {
		return p.errorf("front matter is not closed with ---")
	}
	if p.fence != "" {
		return p.errorf("a ``` block is not closed")
	}
	p.endProse()
	return p.validate()
}

// startQuote begins a Predict, Answer or Hint block; its following "> "
// lines continue it.
func (p *parser) startQuote(line string) error {
	if p.step == nil {
		return p.errorf("%s before the first step (## heading)", strings.Fields(line)[1])
	}
	s := p.step
	var mark string
	switch {
	case strings.HasPrefix(line, predictMark):
		if p.after {
			return p.errorf("step %q asks its question after the ### heading: a prediction is asked before the step runs", s.Title)
		}
		if s.Predict == nil {
			s.Predict = &Predict{}
		}
		mark, p.quote = predictMark, &s.Predict.Question
	case strings.HasPrefix(line, answerMark):
		if !p.after {
			return p.errorf("step %q gives its answer before the ### heading: it would show before the learner predicts", s.Title)
		}
		if s.Predict == nil {
			return p.errorf("step %q has an answer but no > **Predict:** question", s.Title)
		}
		mark, p.quote = answerMark, &s.Predict.Answer
	default:
		mark, p.quote = hintMark, &s.Hint
	}
	if *p.quote != "" {
		return p.errorf("step %q has two %s blocks", s.Title, mark)
	}
	*p.quote = strings.TrimSpace(strings.TrimPrefix(line, mark))
	return nil
}

func (p *parser) frontMatter(line string) error {
	key, raw, ok := strings.Cut(line, ":")
	if !ok {
		return p.errorf("front matter line %q is not key: value", line)
	}
	key, raw = strings.TrimSpace(key), strings.TrimSpace(raw)
	for _, def := range frontMatterDefs {
		if def.key != key {
			continue
		}
		var allowed []string
		switch key {
		case "server":
			for _, b := range behaviorDefs {
				allowed = append(allowed, b.name)
			}
		case "link":
			allowed = []string{"lab"}
		}
		v, err := parseArg(def.arg, raw, allowed)
		if err != nil {
			return p.errorf("%s %v", key, err)
		}
		def.set(p.lesson, v)
		return nil
	}
	return p.errorf("unknown front matter key %q", key)
}

func (p *parser) closeFence() error {
	code := p.code.String()
	lang := p.fence
	p.fence = ""
	if p.step == nil {
		return p.errorf("a code block before the first step")
	}
	switch lang {
	case "js", "javascript":
		if p.step.Node != "" {
			return p.errorf("step %q has two js blocks", p.step.Title)
		}
		p.step.Node = code
	case "go":
		if p.step.Go != "" {
			return p.errorf("step %q has two go blocks", p.step.Title)
		}
		p.step.Go = code
	default:
		p.prose.WriteString("```" + lang + "\n" + code + "```\n")
	}
	return nil
}

// endProse files the prose read so far: the intro, or the step's before
// or after part.
func (p *parser) endProse() {
	text := strings.TrimSpace(p.prose.String())
	p.prose.Reset()
	switch {
	case p.step == nil:
		p.lesson.Intro = text
	case p.after:
		p.step.After = text
	default:
		p.step.Before = text
	}
}

func (p *parser) directive(line string) error {
	body, ok := strings.CutPrefix(line, "<!--")
	if ok {
		body, ok = strings.CutSuffix(body, "-->")
	}
	if !ok {
		return p.errorf("a directive must open and close on one line: <!-- do: ... -->")
	}
	name, arg, ok := strings.Cut(strings.TrimSpace(body), ":")
	if !ok {
		return nil // an ordinary comment
	}
	name, arg = strings.TrimSpace(name), strings.TrimSpace(arg)
	if p.step == nil {
		return p.errorf("directive %q before the first step (## heading)", name)
	}
	switch name {
	case "do":
		a, err := ParseAction(arg)
		if err != nil {
			return p.errorf("%v", err)
		}
		p.step.Actions = append(p.step.Actions, a)
	case "expect", "expect-anytime", "expect-none":
		e, err := ParseExpect(arg)
		if err != nil {
			return p.errorf("%v", err)
		}
		e.Anytime = name == "expect-anytime"
		e.None = name == "expect-none"
		p.step.Expects = append(p.step.Expects, e)
	default:
		return p.errorf("unknown directive %q (do, expect, expect-anytime, expect-none; a question is a > **Predict:** block)", name)
	}
	return nil
}

// ParseAction reads "VERB [ARG]" against actionDefs.
func ParseAction(s string) (Action, error) {
	verb, raw, _ := strings.Cut(s, " ")
	raw = strings.TrimSpace(raw)
	for i := range actionDefs {
		def := &actionDefs[i]
		if def.name != verb {
			continue
		}
		v, err := parseArg(def.arg, raw, nil)
		if err != nil {
			return Action{}, fmt.Errorf("action %s %v", verb, err)
		}
		return Action{Verb: verb, value: v, def: def}, nil
	}
	return Action{}, fmt.Errorf("unknown action %q", verb)
}

// ParseExpect reads "SOURCE KIND [key=value...]" against sourceDefs and
// condDefs.
func ParseExpect(s string) (Expect, error) {
	fields := strings.Fields(s)
	if len(fields) < 2 {
		return Expect{}, fmt.Errorf("expect needs SOURCE KIND, got %q", s)
	}
	e := Expect{Kind: fields[1], Text: s, needed: 1}
	found := false
	var names []string
	for _, src := range sourceDefs {
		names = append(names, src.source.String())
		if src.source.String() != fields[0] {
			continue
		}
		found = true
		e.Source = src.source
		if !contains(src.kinds, e.Kind) {
			return Expect{}, fmt.Errorf("unknown %s kind %q (%s)", fields[0], e.Kind, strings.Join(src.kinds, ", "))
		}
	}
	if !found {
		return Expect{}, fmt.Errorf("unknown source %q (%s)", fields[0], strings.Join(names, ", "))
	}
	for _, f := range fields[2:] {
		c, err := parseCond(f, e.Source)
		if err != nil {
			return Expect{}, err
		}
		if c.Key == "min" {
			e.needed = int(c.num)
		}
		e.Where = append(e.Where, c)
	}
	return e, nil
}

func parseCond(f string, source timeline.Source) (Cond, error) {
	k, raw, _ := strings.Cut(f, "=")
	var keys []string
	for i := range condDefs {
		def := &condDefs[i]
		keys = append(keys, def.key+"=")
		if def.key != k {
			continue
		}
		if def.sources != nil && !containsSource(def.sources, source) {
			return Cond{}, fmt.Errorf("condition %s= is about %s events, not %s", k, sourceList(def.sources), source)
		}
		v, err := parseArg(def.arg, raw, def.values)
		if err != nil {
			return Cond{}, fmt.Errorf("condition %s= %v", k, err)
		}
		return Cond{Key: k, value: v, def: def}, nil
	}
	return Cond{}, fmt.Errorf("condition %q is not one of %s", f, strings.Join(keys, ", "))
}

func containsSource(list []timeline.Source, s timeline.Source) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sourceList(list []timeline.Source) string {
	names := make([]string, len(list))
	for i, s := range list {
		names[i] = s.String()
	}
	return strings.Join(names, " and ")
}

func (p *parser) validate() error {
	l := p.lesson
	switch {
	case l.Number <= 0:
		return fmt.Errorf("%s: front matter needs lesson: N", p.file)
	case l.Title == "":
		return fmt.Errorf("%s: front matter needs title:", p.file)
	case len(l.Steps) == 0:
		return fmt.Errorf("%s: no steps (## headings)", p.file)
	case l.Server.Port <= 0 || l.Server.Port > 65535:
		return fmt.Errorf("%s: port %d is out of range", p.file, l.Server.Port)
	}
	for _, s := range l.Steps {
		if s.Node == "" || s.Go == "" {
			return fmt.Errorf("%s:%d: step %q needs a js block (the Node.js code) and a go block (its Go twin)", p.file, s.Line, s.Title)
		}
		if s.Predict != nil && (s.Predict.Question == "" || s.Predict.Answer == "") {
			return fmt.Errorf("%s:%d: step %q needs both a > **Predict:** question and, after its ### heading, an > **Answer:**", p.file, s.Line, s.Title)
		}
	}
	return nil
}

// Display is the expectation as a learner reads it in a check line: an
// expect-none reads "no server connection".
func (x *Expect) Display() string {
	if x.None {
		return "no " + x.Text
	}
	return x.Text
}

// Matches reports whether an event satisfies the expectation.
func (x *Expect) Matches(e *timeline.Event) bool {
	if e.Source != x.Source || (x.Kind != "*" && e.Kind() != x.Kind) {
		return false
	}
	for i := range x.Where {
		c := &x.Where[i]
		if !c.def.match(c, e) {
			return false
		}
	}
	return true
}
