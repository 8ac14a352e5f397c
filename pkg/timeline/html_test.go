package timeline

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/capture"
	"github.com/tcp-playground/playground/pkg/server"
)

func renderHTML(t *testing.T, title string, events []Event) string {
	t.Helper()
	var buf bytes.Buffer
	v := NewHTMLView(&buf, title)
	renderAll(t, v, events)
	if buf.Len() != 0 {
		t.Errorf("Render and Flush wrote %d bytes before Close", buf.Len())
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := v.Render(events[0]); err == nil {
		t.Error("Render after Close returned nil")
	}
	return buf.String()
}

// svgPart is the <svg> element, checked to be well-formed XML.
func svgPart(t *testing.T, page string) string {
	t.Helper()
	if strings.Count(page, "<svg") != 1 || strings.Count(page, "</svg>") != 1 {
		t.Fatalf("want exactly one <svg> element")
	}
	svg := page[strings.Index(page, "<svg") : strings.Index(page, "</svg>")+len("</svg>")]
	dec := xml.NewDecoder(strings.NewReader(svg))
	dec.Strict = true
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
	}
	return svg
}

var dataKind = regexp.MustCompile(`<g class="segment" data-kind="([^"]+)"`)

func TestHTMLViewNcHello(t *testing.T) {
	wire := wireEvents(t, "nc-hello.pcap")
	page := renderHTML(t, "Lesson 1 <nc-hello>", wire)
	t.Logf("nc-hello.pcap as HTML: %d bytes", len(page))
	if len(page) > 40<<10 {
		t.Errorf("the page is %d bytes, want a few tens of KB at most", len(page))
	}
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.HasSuffix(page, "</html>\n") {
		t.Error("not a whole HTML document")
	}
	if !strings.Contains(page, "<title>Lesson 1 &lt;nc-hello&gt;</title>") {
		t.Error("the title is not escaped")
	}
	svg := svgPart(t, page)

	// One arrow per segment, in order, with its kind.
	if n := strings.Count(page, `class="segment"`); n != len(wire) {
		t.Errorf("%d segment arrows for %d segments", n, len(wire))
	}
	kinds := dataKind.FindAllStringSubmatch(svg, -1)
	for i := range min(len(kinds), len(wire)) {
		if got, want := kinds[i][1], wire[i].Kind(); got != want {
			t.Errorf("arrow %d: data-kind=%q, want %q", i+1, got, want)
		}
	}
	for _, want := range []string{
		`data-kind="SYN+ACK"`,
		"client 127.0.0.1:41304", "server 127.0.0.1:4000", // lane headers
		"&#43;500.585 ms",                               // a time label
		"#0 SYN&#43;ACK seq=0 ack=1",                    // an arrow's label
		`#0 DATA seq=1:7 ack=1 len=6 &#34;hello\n&#34;`, // with its escaped preview
		"meaning   teardown 2&#43;3/4: the server acknowledges and closes its side too", // Segment.Note in the details
		"window    64 × 2^10 = 65536 bytes",
		`payload   &#34;Hello from server&#34;`,
		`polygon points="190,`, // an arrowhead on the client's lane
		"<script>",
		`addEventListener("click"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	// Self-contained: nothing to fetch.
	rest := strings.Replace(page, `xmlns="http://www.w3.org/2000/svg"`, "", 1)
	for _, ref := range []string{"http://", "https://", "src=", "href=", "url(", "@import", "//cdn"} {
		if strings.Contains(rest, ref) {
			t.Errorf("the page refers to something outside it: %q", ref)
		}
	}
}

func TestHTMLViewProgramEventsAndHostilePayload(t *testing.T) {
	wire := wireEvents(t, "nc-hello.pcap")
	programs := programEvents(wire)
	srv := netip.MustParseAddrPort("127.0.0.1:4000")
	programs = append(programs, ServerEvent(server.Event{Time: wire[5].Time, Kind: server.Data, Local: srv,
		Data:   []byte(`<script>alert(1)</script></title><img src=x onerror=alert(2)>"'&`),
		Detail: "</text><script>alert(3)</script>"}))
	events := mixed(t, wire, programs)
	page := renderHTML(t, "mixed", events)
	svgPart(t, page)

	if n := strings.Count(page, `class="segment"`); n != len(wire) {
		t.Errorf("%d segment arrows for %d segments", n, len(wire))
	}
	if n := strings.Count(page, `class="program-event"`); n != len(programs) {
		t.Errorf("%d program markers for %d program events", n, len(programs))
	}
	for _, bad := range []string{"<script>alert", "<img", "onerror=alert(2)>", "</title><img", "\x1b", "\x07"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d <script> elements, want only the page's own", n)
	}
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;", // the payload, escaped
		`\x1b]0;pwned\x07`,                      // control bytes as Go escapes
		`data-source="server"`, `data-source="client"`,
		"#0 connection from 127.0.0.1:41304",
		"1 connection, 12 program events",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// TestHTMLKeepsPreviewsOnly: a program's big read is kept as a preview with
// its length, not whole.
func TestHTMLKeepsPreviewsOnly(t *testing.T) {
	var page bytes.Buffer
	v := NewHTMLView(&page, "big read")
	big := bytes.Repeat([]byte("x"), 1<<20)
	v.Render(ServerEvent(server.Event{Time: time.Now(), Kind: server.Data, Data: big}))
	if kept := len(v.events[0].Payload()); kept > capture.PreviewMax {
		t.Errorf("kept %d bytes of a 1 MiB read", kept)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "1048576 bytes") {
		t.Error("the page lost the read's length")
	}
}
