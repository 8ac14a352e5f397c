package kernel

// The BPF programs live in bpf/tcpstates.c (the kernel lane) and
// bpf/tcpcalls.c (the process lane). Regenerating their objects and Go
// bindings needs clang; a build does not: tcpstates_bpfel.go,
// tcpstates_bpfel.o, tcpcalls_bpfel.go and tcpcalls_bpfel.o are committed.
// bpfsource_hash.go records the sha256 of the C sources the objects were
// built from, and TestBPFObjectsMatchSource fails when a source changed
// without `go generate`.
//
// -target bpfel covers amd64 and arm64. The programs read no kernel struct
// through CO-RE (tcpcalls.c takes its few offsets from kernel BTF at load
// time), so one object serves every little-endian architecture.
//
//go:generate go tool bpf2go -tags linux -target bpfel -type event tcpstates bpf/tcpstates.c -- -I./bpf -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel -type call tcpcalls bpf/tcpcalls.c -- -I./bpf -O2 -g -Wall -Werror
//go:generate go run hash_bpf_sources.go -o bpfsource_hash.go bpf/tcpstates.c bpf/tcpcalls.c bpf/bpf_defs.h
