package timeline

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AsyncView keeps a slow terminal from stalling the capture. Render hands
// events to a writer goroutine through a bounded queue and never blocks:
// when the queue is full, the event is not shown but counted by kind, and
// as soon as the writer catches up it says what it skipped, e.g.
// "… 523 events not shown (the terminal was too slow): 200 SYN, 200 SYN+ACK, 123 connection".
// Nothing is lost silently, and the capture keeps reading at wire speed.
type AsyncView struct {
	next  Summarizer
	queue chan Event

	mu      sync.Mutex
	skipped map[string]int
	total   int // skipped in all, over the whole run

	done chan struct{}
	err  error
}

// NewAsyncView starts the writer goroutine; Close stops it. The view
// writes the summary of skipped events in its own format.
func NewAsyncView(next Summarizer, capacity int) *AsyncView {
	v := &AsyncView{
		next:    next,
		queue:   make(chan Event, capacity),
		skipped: make(map[string]int),
		done:    make(chan struct{}),
	}
	go v.loop()
	return v
}

// Render queues an event, or counts it when the queue is full.
func (v *AsyncView) Render(e Event) error {
	select {
	case v.queue <- e:
	default:
		v.mu.Lock()
		v.skipped[e.Source.String()+" "+e.Kind()]++
		v.total++
		v.mu.Unlock()
	}
	return nil
}

// Flush is a no-op: the writer flushes whenever its queue runs empty.
func (v *AsyncView) Flush() error { return nil }

// Skipped is how many events were not shown.
func (v *AsyncView) Skipped() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.total
}

// Drain waits until everything queued so far is written and flushed, so
// that text the caller writes next comes after it. Unlike Render it may
// block (on a stuck terminal): call it from the goroutine that narrates,
// never from the one that reads the capture.
func (v *AsyncView) Drain() {
	reached := make(chan struct{})
	v.queue <- Event{barrier: reached}
	<-reached
}

func (v *AsyncView) loop() {
	defer close(v.done)
	for e := range v.queue {
		if e.barrier != nil {
			if v.err == nil {
				v.err = v.report()
			}
			if v.err == nil {
				v.err = v.next.Flush()
			}
			close(e.barrier)
			continue
		}
		if v.err != nil {
			continue // keep draining so Render never blocks
		}
		if err := v.report(); err != nil {
			v.err = err
			continue
		}
		if err := v.next.Render(e); err != nil {
			v.err = err
			continue
		}
		if len(v.queue) == 0 {
			if err := v.next.Flush(); err != nil {
				v.err = err
			}
		}
	}
	if v.err == nil {
		v.err = v.report()
	}
	if v.err == nil {
		v.err = v.next.Flush()
	}
}

// report writes what was skipped since the last report, if anything.
func (v *AsyncView) report() error {
	v.mu.Lock()
	if len(v.skipped) == 0 {
		v.mu.Unlock()
		return nil
	}
	counts := v.skipped
	v.skipped = make(map[string]int)
	v.mu.Unlock()
	return v.next.Summary(summarize(counts))
}

// summarize says "523 events not shown (...): 200 wire SYN, ...", biggest first.
func summarize(counts map[string]int) string {
	type kc struct {
		kind string
		n    int
	}
	var list []kc
	sum := 0
	for k, n := range counts {
		list = append(list, kc{k, n})
		sum += n
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].kind < list[j].kind
	})
	parts := make([]string, len(list))
	for i, x := range list {
		parts[i] = strconv.Itoa(x.n) + " " + x.kind
	}
	return "… " + strconv.Itoa(sum) + " events not shown (the terminal was too slow): " + strings.Join(parts, ", ")
}

// Close shows what is queued, then stops the writer and returns the first
// write error.
func (v *AsyncView) Close() error {
	close(v.queue)
	<-v.done
	return v.err
}

// Summarizer is a view that can say, in its own format, that events were
// not shown: AsyncView needs one to report what a slow terminal missed.
// Every screen view implements it (TestViewsSummarize).
type Summarizer interface {
	Renderer
	// Summary writes one line about what was not shown.
	Summary(text string) error
}

// Summary writes a summary line, dimmed.
func (v *LogView) Summary(text string) error {
	_, err := v.w.WriteString(v.styles.warn.on + text + v.styles.warn.off + "\n")
	return err
}

// Summary writes a summary line, dimmed.
func (v *LadderView) Summary(text string) error {
	_, err := v.w.WriteString(v.styles.warn.on + text + v.styles.warn.off + "\n")
	return err
}

// Summary writes {"source":"timeline","kind":"skipped","note":...}.
func (v *JSONView) Summary(text string) error {
	return v.enc.Encode(struct {
		Time    string `json:"time"`
		Source  string `json:"source"`
		Kind    string `json:"kind"`
		Summary string `json:"note"`
	}{time.Now().UTC().Format(time.RFC3339Nano), "timeline", "skipped", text})
}
