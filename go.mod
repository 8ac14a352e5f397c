module github.com/tcp-playground/playground

go 1.25.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/fatih/color v1.19.0
	github.com/google/gopacket v1.1.19
	github.com/mattn/go-isatty v0.0.20
	golang.org/x/sys v0.43.0
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	golang.org/x/net v0.48.0 // indirect
)

tool github.com/cilium/ebpf/cmd/bpf2go
