package cli

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestLessonWritesPcapAndHTML runs lesson 1 with --write and --html: tshark
// reads the pcap back with exactly the segments the timeline showed (same
// count, flags and lengths), and the HTML has one arrow per segment.
func TestLessonWritesPcapAndHTML(t *testing.T) {
	skipUnlessCapture(t)
	requireCommand(t, "tshark")
	dir := t.TempDir()
	pcapPath, htmlPath := filepath.Join(dir, "lesson1.pcapng"), filepath.Join(dir, "lesson1.html")
	code, out, errOut := run(t, "lesson1", "--auto", "--json", "--port", strconv.Itoa(freePort(t)), "--write", pcapPath, "--html", htmlPath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var shown []string
	for _, e := range parseJSONLines(t, out) {
		if e.Source == "wire" {
			shown = append(shown, e.Flags+" "+strconv.Itoa(e.Len))
		}
	}
	tshark, err := exec.Command("tshark", "-r", pcapPath, "-T", "fields", "-e", "tcp.flags.str", "-e", "tcp.len").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", pcapPath, err)
	}
	var read []string
	for _, line := range strings.Split(strings.TrimSpace(string(tshark)), "\n") {
		f := strings.Split(line, "\t")
		read = append(read, tsharkFlags(f[0])+" "+f[1])
	}
	if strings.Join(shown, "\n") != strings.Join(read, "\n") {
		t.Errorf("the timeline showed:\n%s\ntshark reads from --write:\n%s", strings.Join(shown, "\n"), strings.Join(read, "\n"))
	}
	html, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(html), `class="segment"`); n != len(shown) {
		t.Errorf("the HTML has %d segment arrows, the timeline %d segments", n, len(shown))
	}
}

// tsharkFlags turns tshark's tcp.flags.str ("·······A·S·") into tcpdump's
// letters ("S."), as the JSON carries them.
func tsharkFlags(s string) string {
	var out string
	for _, f := range []struct {
		letter rune
		out    string
	}{{'F', "F"}, {'S', "S"}, {'R', "R"}, {'P', "P"}, {'A', "."}, {'U', "U"}, {'E', "E"}, {'C', "W"}} {
		if strings.ContainsRune(s, f.letter) {
			out += f.out
		}
	}
	if out == "" {
		return "none"
	}
	return out
}

// TestHTMLInBrowser loads replay's HTML diagram in headless Chromium: the
// rendered page has one arrow per segment and their labels, and its
// screenshot is not blank.
func TestHTMLInBrowser(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("chromium is not installed (scripts/setup.sh --test installs it; CI fails on this skip)")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "nc-hello.html")
	if code, _, errOut := run(t, "replay", captures+"/nc-hello.pcap", "--html", page); code != 0 {
		t.Fatalf("replay --html: %s", errOut)
	}
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + filepath.Join(dir, "profile")}
	dom, err := exec.Command(browser, append(flags, "--dump-dom", "file://"+page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	arrows := regexp.MustCompile(`<g[^>]*class="segment"`).FindAll(dom, -1)
	if len(arrows) != 10 {
		t.Errorf("the rendered page has %d segment arrows, want 10 (nc-hello.pcap)", len(arrows))
	}
	for _, label := range []string{"SYN+ACK", "handshake", "Hello from server"} {
		if !bytes.Contains(dom, []byte(label)) {
			t.Errorf("the rendered page lacks %q", label)
		}
	}
	shot := filepath.Join(dir, "shot.png")
	if out, err := exec.Command(browser, append(flags, "--screenshot="+shot, "--window-size=1200,900", "file://"+page)...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if colors := distinctColors(img); colors < 8 {
		t.Errorf("the screenshot has %d distinct colors: blank", colors)
	}
}

func distinctColors(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r >> 8, g >> 8, bl >> 8, a >> 8}] = true
		}
	}
	return len(seen)
}
