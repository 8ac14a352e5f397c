package capture

import (
	"strings"
	"testing"
)

// TestSteps checks, for recorded conversations, each segment's kind and its
// place in the handshake or teardown, and which side is the client.
func TestSteps(t *testing.T) {
	// Each line: "→" from the client or "←" from the server, the kind, the step.
	tests := []struct {
		file string
		want []string
	}{
		{"nc-hello.pcap", []string{
			"→ SYN handshake 1/3",
			"← SYN+ACK handshake 2/3",
			"→ ACK handshake 3/3",
			"→ DATA",
			"← ACK",
			"← DATA",
			"→ ACK",
			"→ FIN teardown 1/4",
			"← FIN teardown 2+3/4",
			"→ ACK teardown 4/4",
		}},
		{"http-curl.pcap", []string{
			"→ SYN handshake 1/3",
			"← SYN+ACK handshake 2/3",
			"→ ACK handshake 3/3",
			"→ DATA",
			"← ACK",
			"← DATA",
			"→ ACK",
			"← DATA",
			"→ ACK",
			"→ FIN teardown 1/4",
			"← FIN teardown 2+3/4",
			"→ ACK teardown 4/4",
		}},
		{"refused.pcap", []string{
			"→ SYN handshake 1/3",
			"← RST refused",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			segs := readFile(t, "testdata/"+tt.file)
			var got []string
			for _, s := range segs {
				dir := "←"
				if s.FromClient {
					dir = "→"
				}
				got = append(got, strings.TrimSpace(dir+" "+s.Kind.String()+" "+s.Step.String()))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
