package kernel

// The BPF program lives in bpf/tcpstates.c. Regenerating its object and Go
// bindings needs clang; a build does not: tcpstates_bpfel.go and
// tcpstates_bpfel.o are committed. bpfsource_hash.go records the sha256 of
// the C sources the objects were built from, and TestBPFObjectsMatchSource
// fails when a source changed without `go generate`.
//
// -target bpfel covers amd64 and arm64. The program reads no kernel struct
// through CO-RE, so one object serves every little-endian architecture.
//
//go:generate go tool bpf2go -tags linux -target bpfel -type event tcpstates bpf/tcpstates.c -- -I./bpf -O2 -g -Wall -Werror
//go:generate go run hash_bpf_sources.go -o bpfsource_hash.go bpf/tcpstates.c bpf/bpf_defs.h
