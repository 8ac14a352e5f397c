package lesson

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/netlab"
)

// fakeLab records what a lab lesson asks of its lab, without root.
type fakeLab struct{ links []netlab.Link }

func (f *fakeLab) InClient(fn func() error) error { return fn() }
func (f *fakeLab) InServer(fn func() error) error { return fn() }
func (f *fakeLab) SetLink(l netlab.Link) error {
	f.links = append(f.links, l)
	return nil
}

const labLesson = "---\nlesson: 11\ntitle: T\nlink: lab\n---\n## S\n```js\nx\n```\n```go\ny\n```\n"

// TestLinkActions: each link action sets the whole link, in the order the
// step says; a rule replaces the rule before it and keeps the delay.
func TestLinkActions(t *testing.T) {
	l, err := Parse("l.md", []byte(labLesson+"<!-- do: link-delay 50ms -->\n<!-- do: link-drop-syn -->\n<!-- do: link-drop-data 3 -->\n<!-- do: link-clear -->\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !l.Lab {
		t.Fatal("link: lab did not make a lab lesson")
	}
	lab := &fakeLab{}
	opts := fastOptions(true)
	opts.Lab = lab
	r, err := Run(context.Background(), l, opts, startProgramSession(t), &scriptUI{})
	if err != nil || !r.OK() {
		t.Fatalf("result %+v, err %v", r, err)
	}
	delay := netlab.Impairment{Delay: 50 * time.Millisecond}
	want := []netlab.Link{
		{ClientToServer: delay, ServerToClient: delay},
		{ClientToServer: delay, ServerToClient: delay, Rules: []netlab.Rule{netlab.DropAll(netlab.ClientToServer, netlab.MatchSYN)}},
		{ClientToServer: delay, ServerToClient: delay, Rules: []netlab.Rule{netlab.DropNth(netlab.ClientToServer, netlab.MatchData, 3)}},
		{},
	}
	if !reflect.DeepEqual(lab.links, want) {
		t.Errorf("links set:\n got %+v\nwant %+v", lab.links, want)
	}
}

// TestLabLessonNeedsALab: a lab lesson does not run without its lab.
func TestLabLessonNeedsALab(t *testing.T) {
	l, err := Parse("l.md", []byte(labLesson+"<!-- do: link-clear -->\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), l, fastOptions(true), startProgramSession(t), &scriptUI{}); !errors.Is(err, ErrNoLab) {
		t.Errorf("err %v, want ErrNoLab", err)
	}
}

// TestLabParseErrors: the link's actions need `link: lab`, and a lab
// lesson has the lab's addresses.
func TestLabParseErrors(t *testing.T) {
	plain := strings.Replace(labLesson, "link: lab\n", "", 1)
	for name, text := range map[string]string{
		"link action without the lab": plain + "<!-- do: link-drop-syn -->\n",
		"another link":                strings.Replace(labLesson, "link: lab", "link: wifi", 1),
		"host in the lab":             strings.Replace(labLesson, "link: lab\n", "link: lab\nhost: \"::1\"\n", 1),
		"dial HOST in the lab":        labLesson + "<!-- do: dial ::1 -->\n",
		"drop the 0th":                labLesson + "<!-- do: link-drop-data 0 -->\n",
		"drop the xth":                labLesson + "<!-- do: link-drop-data x -->\n",
	} {
		if _, err := Parse("l.md", []byte(text)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}
