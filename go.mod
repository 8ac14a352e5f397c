module github.com/tcp-playground/playground

go 1.25.0

require (
	github.com/fatih/color v1.19.0
	github.com/google/gopacket v1.1.19
	github.com/mattn/go-isatty v0.0.20
	golang.org/x/sys v0.42.0
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	golang.org/x/net v0.0.0-20190620200207-3b0461eec859 // indirect
)
