package timeline

import (
	"bufio"
	"fmt"
	"html/template"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tcp-playground/playground/pkg/capture"
)

// HTMLView keeps the timeline and, on Close, writes it as one
// self-contained HTML page: an SVG sequence diagram with a client lane and
// a server lane, an arrow per segment, the programs' events as markers on
// their lanes, and the details of whatever the reader hovers over or
// clicks. The page fetches nothing: its CSS and script are inline.
type HTMLView struct {
	w      io.Writer
	title  string
	events []Event
	more   int // events past htmlMaxEvents, counted but not drawn
	closed bool
}

// htmlMaxEvents bounds what an HTMLView keeps (about 1 KB of page each).
const htmlMaxEvents = 20000

// Layout of the diagram, in SVG user units (CSS pixels).
const (
	htmlTimeX     = 96  // right edge of the time labels
	htmlClientX   = 190 // the client lane
	htmlServerX   = 750 // the server lane
	htmlWidth     = 1150
	htmlTop       = 56 // the first row's line
	htmlRowHeight = 28
	htmlHead      = 9  // arrowhead length
	htmlLabelMax  = 76 // characters of an arrow's label
	htmlMarkerMax = 52 // characters of a marker's text
)

// NewHTMLView returns a view that writes its page to w when closed.
func NewHTMLView(w io.Writer, title string) *HTMLView {
	return &HTMLView{w: w, title: title}
}

// Render keeps an event for the page.
func (v *HTMLView) Render(e Event) error {
	if v.closed {
		return fmt.Errorf("timeline: render on a closed HTMLView")
	}
	if len(v.events) >= htmlMaxEvents {
		v.more++
		return nil
	}
	// Keep a preview of what programs read and wrote, not megabytes.
	v.events = append(v.events, e.previewOnly(capture.PreviewMax))
	return nil
}

// Flush does nothing: the page is written whole, by Close.
func (v *HTMLView) Flush() error { return nil }

// Close writes the page. Later calls do nothing.
func (v *HTMLView) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	bw := bufio.NewWriterSize(v.w, 64<<10)
	if err := htmlPage.Execute(bw, v.page()); err != nil {
		return err
	}
	return bw.Flush()
}

// htmlPageData is what the template draws.
type htmlPageData struct {
	Title                    string
	CSS                      template.CSS
	Width, Height            int
	ClientX, ServerX, TimeX  int
	LaneTop, LaneBottom      int
	ClientLabel, ServerLabel string
	Summary                  string
	Rows                     []htmlRow
	More                     int
}

// htmlRow is one line of the diagram: an arrow, a marker, or the header of
// a new connection.
type htmlRow struct {
	Y, TextY int
	Time     string
	Details  string // the hover title and the panel's text

	Segment  bool
	KindAttr template.HTMLAttr // data-kind="SYN+ACK"
	X1, X2   int               // the arrow's shaft, from the sender
	Head     string            // the arrowhead's points
	LabelX   int

	Program bool
	Source  string // "server" or "client"
	MarkerX int

	Header bool

	Label string
}

func (v *HTMLView) page() htmlPageData {
	d := htmlPageData{
		Title:   v.title,
		CSS:     htmlCSS(),
		Width:   htmlWidth,
		ClientX: htmlClientX, ServerX: htmlServerX, TimeX: htmlTimeX,
		LaneTop: htmlTop - 24,
		More:    v.more,
	}
	var start time.Time
	if len(v.events) > 0 {
		start = v.events[0].Time
	}
	seen := make(map[int64]bool)
	var clients, servers []string
	var segments, programs int
	y := htmlTop
	row := func(r htmlRow) {
		r.Y, r.TextY = y, y+4
		d.Rows = append(d.Rows, r)
		y += htmlRowHeight
	}
	for i := range v.events {
		e := &v.events[i]
		if e.Stream >= 0 && !seen[e.Stream] {
			if client, server, ok := ladderEnds(e); ok {
				seen[e.Stream] = true
				clients, servers = addOnce(clients, client), addOnce(servers, server)
				row(htmlRow{Header: true, LabelX: (htmlClientX + htmlServerX) / 2,
					Label: streamLabel(e.Stream) + "  client " + client + " ⟷ server " + server})
			}
		}
		r := htmlRow{Time: string(appendRelTime(nil, e.Time.Sub(start))), Details: htmlDetails(e, start)}
		switch e.Source {
		case SourceWire:
			segments++
			v.arrow(&r, e, y)
		default:
			programs++
			r.Program, r.Source = true, e.Source.String()
			text := markerKind(e) + " " + e.lane().short(e.PayloadLen())
			if p := e.Payload(); len(p) > 0 {
				text += " " + string(AppendEscaped(nil, plainStyles, p, previewBytes, e.PayloadLen()))
			}
			if e.Late {
				text += " (late)"
			}
			r.Label = fitCells(cleanText(streamPrefix(e.Stream)+text), htmlMarkerMax)
			r.MarkerX = htmlClientX
			if e.Side() == SideServer {
				r.MarkerX = htmlServerX
			}
		}
		row(r)
	}
	d.Height = y
	d.LaneBottom = y - htmlRowHeight/2
	d.ClientLabel, d.ServerLabel = laneLabel("client", clients), laneLabel("server", servers)
	d.Summary = Plural(segments, "segment") + " on " + Plural(len(seen), "connection") + ", " + Plural(programs, "program event")
	return d
}

// arrow fills in a segment's row: a shaft from the sender's lane to the
// receiver's, an arrowhead, and the label above it.
func (v *HTMLView) arrow(r *htmlRow, e *Event, y int) {
	seg := &e.Segment
	r.Segment = true
	r.KindAttr = template.HTMLAttr(`data-kind="` + seg.Kind.String() + `"`) // a fixed set of names
	from, to, dir := htmlClientX, htmlServerX, 1
	if !seg.FromClient {
		from, to, dir = htmlServerX, htmlClientX, -1
	}
	r.X1, r.X2 = from, to-dir*htmlHead
	r.Head = fmt.Sprintf("%d,%d %d,%d %d,%d", to, y, to-dir*htmlHead, y-4, to-dir*htmlHead, y+4)
	r.LabelX = (htmlClientX + htmlServerX) / 2
	label := seg.Kind.String() + " " + string(appendNumbers(nil, seg))
	if seg.Analysis != 0 {
		label += " (" + seg.Analysis.String() + ")"
	}
	if e.Late {
		label += " (late)"
	}
	if seg.Len > 0 {
		label += " " + string(AppendEscaped(nil, plainStyles, seg.Preview(), 24, seg.Len))
	}
	r.Label = fitCells(cleanText(streamPrefix(e.Stream)+label), htmlLabelMax)
}

// htmlDetails is the text of an event's details: everything the log view
// and the JSON view say about it.
func htmlDetails(e *Event, start time.Time) string {
	var b strings.Builder
	line := func(parts ...string) {
		b.WriteString(strings.Join(parts, ""))
		b.WriteByte('\n')
	}
	when := string(appendRelTime(nil, e.Time.Sub(start))) + "  (" + e.Time.UTC().Format("15:04:05.000000000") + " UTC)"
	if e.Source == SourceWire {
		seg := &e.Segment
		dir := "server → client"
		if seg.FromClient {
			dir = "client → server"
		}
		line(streamPrefix(e.Stream), seg.Kind.String(), "  [", seg.Flags.String(), "]  ", dir, "  frame ", strconv.FormatUint(seg.Frame, 10))
		line("time      ", when)
		line("from/to   ", seg.Src.String(), " → ", seg.Dst.String())
		seq := strconv.FormatUint(uint64(seg.Seq), 10)
		if seg.Len > 0 {
			seq += ":" + strconv.FormatUint(uint64(seg.SeqEnd()), 10)
		}
		line("seq       ", seq, "   (raw ", strconv.FormatUint(uint64(seg.RawSeq), 10), ")")
		if seg.Flags&capture.FlagACK != 0 {
			line("ack       ", strconv.FormatUint(uint64(seg.Ack), 10), "   (raw ", strconv.FormatUint(uint64(seg.RawAck), 10), ")")
		} else {
			line("ack       -  (no ACK flag)")
		}
		line("len       ", strconv.Itoa(seg.Len), " bytes of payload")
		win := strconv.FormatUint(uint64(seg.Window), 10)
		if seg.Flags&capture.FlagSYN != 0 {
			win += " bytes   (a SYN's window is never scaled)"
		} else if seg.WindowScale >= 0 {
			win += " × 2^" + strconv.Itoa(int(seg.WindowScale)) + " = " + strconv.FormatUint(seg.ScaledWindow(), 10) + " bytes"
		} else {
			win += "   (scale unknown)"
		}
		line("window    ", win)
		if seg.MSS != 0 {
			line("mss       ", strconv.Itoa(int(seg.MSS)))
		}
		if seg.Analysis != 0 {
			line("analysis  ", seg.Analysis.String(), ": ", explainAnalysis(seg))
		}
		if note := SegmentNote(seg); note != "" {
			line("meaning   ", note)
		}
		if seg.Len > 0 {
			line("payload   ", string(AppendEscaped(nil, plainStyles, seg.Preview(), capture.PreviewMax, seg.Len)))
		}
	} else {
		local, remote := e.Endpoints()
		line(streamPrefix(e.Stream), e.Source.String(), " ", e.Kind())
		line("time      ", when)
		if s := ProgramSummary(e); s != "" {
			line("saw       ", s)
		}
		if local.IsValid() || remote.IsValid() {
			line("local     ", addrOrDash(local), "   remote ", addrOrDash(remote))
		}
		if note := ProgramNote(e); note != "" {
			line("meaning   ", note)
		}
		if p := e.Payload(); len(p) > 0 {
			line("payload   ", string(AppendEscaped(nil, plainStyles, p, capture.PreviewMax, e.PayloadLen())))
		}
	}
	if e.Late {
		line("late      it arrived after the reorder window: shown out of time order")
	}
	return cleanText(strings.TrimSuffix(b.String(), "\n"))
}

func addrOrDash(a netip.AddrPort) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

// streamPrefix is "#0 ", or "" for an event of no known connection.
func streamPrefix(stream int64) string {
	if stream < 0 {
		return ""
	}
	return streamLabel(stream) + " "
}

// laneLabel names a lane after its first address, and says how many more
// it stands for.
func laneLabel(role string, addrs []string) string {
	switch len(addrs) {
	case 0:
		return role
	case 1:
		return role + " " + addrs[0]
	}
	return role + " " + addrs[0] + " and " + strconv.Itoa(len(addrs)-1) + " more"
}

func addOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// cleanText replaces control characters other than newlines (in an error
// message, say) with U+FFFD: XML, and so SVG, forbids most of them.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && unicode.IsControl(r) {
			return unicode.ReplacementChar
		}
		return r
	}, s)
}

// htmlCSS colors the diagram as the terminal does: each kind its hue, the
// server and the client their roles' colors.
func htmlCSS() template.CSS {
	var b strings.Builder
	b.WriteString(htmlBaseCSS)
	for k, color := range webKindColor {
		sel := `.segment[data-kind="` + capture.Kind(k).String() + `"]`
		fmt.Fprintf(&b, "%s line{stroke:%s}%s polygon,%s text{fill:%s}\n", sel, color, sel, sel, color)
	}
	fmt.Fprintf(&b, `.server{fill:%s}.lane.server{stroke:%s}.program-event[data-source="server"] circle{fill:%s}`+"\n", webServerColor, webServerColor, webServerColor)
	fmt.Fprintf(&b, `.client{fill:%s}.lane.client{stroke:%s}.program-event[data-source="client"] circle{stroke:%s}`+"\n", webClientColor, webClientColor, webClientColor)
	fmt.Fprintf(&b, ".time,.stream-header,.hint{fill:%s;color:%s}\n", webDimColor, webDimColor)
	fmt.Fprintf(&b, ".late{color:%s}#details{border-left:4px solid %s}\n", webWarnColor, webPayloadColor)
	return template.CSS(b.String())
}

const htmlBaseCSS = `body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#111}
h1{font-size:1.3em;margin:0 0 .2em}
.hint{margin:0 0 .6em}
#details{position:sticky;top:0;z-index:1;background:#f8f8f8;font:12px/1.45 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;margin:0 0 1em;padding:.5em 1em;min-height:4.5em;box-shadow:0 1px 3px #0002}
svg{font:12px ui-monospace,Menlo,Consolas,monospace;display:block}
.lane{stroke-width:2}
.lane-label{font-weight:bold}
.segment line{stroke-width:1.6}
.segment,.program-event{cursor:pointer;outline:none}
.segment:hover line,.segment:focus line,.segment.selected line{stroke-width:3.5}
.segment:hover text,.segment:focus text,.segment.selected text,.program-event:hover text,.program-event:focus text,.program-event.selected text{font-weight:bold}
.program-event circle{stroke-width:2}
.program-event[data-source="client"] circle{fill:#fff}
.program-event text{fill:#111}
`

// The page. html/template escapes every value for where it lands; the only
// raw values are the CSS built from styles.go and the data-kind attribute
// from the fixed kind names.
var htmlPage = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
{{.CSS}}</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="hint">{{.Summary}}. Hover over an arrow or a marker for its details, or click it to show them here:</p>
<pre id="details">Click an arrow or a marker.</pre>
{{- if .More}}
<p class="late">{{.More}} more events were not drawn: the page keeps the first {{len .Rows}} rows.</p>
{{- end}}
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}">
<text class="lane-label client" x="{{.ClientX}}" y="16" text-anchor="middle">{{.ClientLabel}}</text>
<text class="lane-label server" x="{{.ServerX}}" y="16" text-anchor="middle">{{.ServerLabel}}</text>
<line class="lane client" x1="{{.ClientX}}" y1="{{.LaneTop}}" x2="{{.ClientX}}" y2="{{.LaneBottom}}"/>
<line class="lane server" x1="{{.ServerX}}" y1="{{.LaneTop}}" x2="{{.ServerX}}" y2="{{.LaneBottom}}"/>
{{- range .Rows}}
{{- if .Header}}
<text class="stream-header" x="{{.LabelX}}" y="{{.TextY}}" text-anchor="middle">{{.Label}}</text>
{{- else}}
<text class="time" x="{{$.TimeX}}" y="{{.TextY}}" text-anchor="end">{{.Time}}</text>
{{- if .Segment}}
<g class="segment" {{.KindAttr}} tabindex="0"><title>{{.Details}}</title><line x1="{{.X1}}" y1="{{.Y}}" x2="{{.X2}}" y2="{{.Y}}"/><polygon points="{{.Head}}"/><text x="{{.LabelX}}" y="{{.Y}}" dy="-5" text-anchor="middle">{{.Label}}</text></g>
{{- else}}
<g class="program-event" data-source="{{.Source}}" tabindex="0"><title>{{.Details}}</title><circle cx="{{.MarkerX}}" cy="{{.Y}}" r="5"/><text x="{{.MarkerX}}" y="{{.TextY}}" dx="12">{{.Label}}</text></g>
{{- end}}
{{- end}}
{{- end}}
</svg>
<script>
(function () {
  var panel = document.getElementById("details");
  var selected = null;
  function show(g) {
    var t = g.querySelector("title");
    panel.textContent = t ? t.textContent : "";
    if (selected) { selected.classList.remove("selected"); }
    selected = g;
    g.classList.add("selected");
  }
  var items = document.querySelectorAll(".segment, .program-event");
  for (var i = 0; i < items.length; i++) {
    (function (g) {
      g.addEventListener("click", function () { show(g); });
      g.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); show(g); }
      });
    })(items[i]);
  }
})();
</script>
</body>
</html>
`))
