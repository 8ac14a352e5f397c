package kernel

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestBPFObjectsMatchSource catches a BPF source edited without `go
// generate`: the committed objects would still hold the old program.
// Regenerating needs clang, so instead of rebuilding, compare the sources
// with the hashes recorded when the objects were generated.
func TestBPFObjectsMatchSource(t *testing.T) {
	sources, err := filepath.Glob("bpf/*.[ch]")
	if err != nil {
		t.Fatal(err)
	}
	recorded := make([]string, 0, len(bpfSourceHashes))
	for name := range bpfSourceHashes {
		recorded = append(recorded, name)
	}
	slices.Sort(sources)
	slices.Sort(recorded)
	if !slices.Equal(sources, recorded) {
		t.Fatalf("BPF sources %v, but the objects were generated from %v: run go generate ./pkg/kernel (needs clang), and list every source in generate.go", sources, recorded)
	}
	for _, name := range sources {
		content, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		if got := hex.EncodeToString(sum[:]); got != bpfSourceHashes[name] {
			t.Errorf("%s changed since its object was generated (sha256 %s, generated from %s): run go generate ./pkg/kernel (needs clang) and commit the objects", name, got, bpfSourceHashes[name])
		}
	}
}
