package server

import (
	"fmt"
	"net/netip"
	"time"
)

// Kind names what happened, with the names Node's net module gives its events
// so that a lesson can show the Node snippet and the Go twin side by side.
type Kind uint8

const (
	Listening  Kind = iota // the listener is bound (Node: server "listening")
	Connection             // Accept returned a connection (Node: server "connection")
	Data                   // a Read returned bytes (Node: socket "data")
	Write                  // a Write returned (Node: socket.write)
	Close                  // a connection closed (Node: socket "close"); with Conn 0, the listener closed (Node: server "close")
	Error                  // something failed outside one connection's life, e.g. Accept (Node: "error")
)

var kindNames = [...]string{
	Listening:  "listening",
	Connection: "connection",
	Data:       "data",
	Write:      "write",
	Close:      "close",
	Error:      "error",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Details of Close events. They are constants so that a lesson can match on
// them without copying strings.
const (
	DetailPeerFIN      = "peer closed (FIN)"
	DetailPeerRST      = "reset by peer (RST)"
	DetailByServer     = "closed by server"
	DetailAbortServer  = "aborted by server (RST)"
	DetailListenerDown = "listener closed"
)

// Event is one thing the server's own code saw. Time is taken right after the
// system call returned, from the same CLOCK_REALTIME the packet capture uses,
// so the timeline can put both on one clock.
type Event struct {
	Time time.Time
	Kind Kind
	// Conn is the 1-based connection number in accept order; 0 for listener events.
	Conn uint64
	// Local is the server's address: the listener's for listener events, the
	// connection's LocalAddr otherwise. Unmapped, as on the wire.
	Local netip.AddrPort
	// Remote is the peer, unmapped: what is on the wire.
	Remote netip.AddrPort
	// NodeRemoteAddress is socket.remoteAddress as Node prints it for the same
	// socket: "::ffff:127.0.0.1" for an IPv4 client of a dual-stack listener.
	NodeRemoteAddress string
	// NodeLocalAddress is socket.address().address (or server.address().address
	// for Listening) as Node prints it; lesson 4 shows it beside remoteAddress.
	NodeLocalAddress string
	// Family is "IPv4" or "IPv6" as Node's remoteFamily (or, for Listening,
	// server.address().family) says: IPv6 for a mapped address, as Node does.
	Family string
	// Data holds, for Data, the bytes read and, for Write, the bytes written.
	// It is always a copy the receiver may keep.
	Data []byte
	// Err is, for Close, nil after a clean close (peer FIN or ours) and the
	// cause otherwise; for Write, the write's error; for Error, the error.
	Err error
	// Detail is a short explanation, e.g. DetailPeerFIN for a Close.
	Detail string
}

// nodeAddress says how Node would print a socket address and its family.
// Node asks the kernel (getpeername/getsockname) and prints the sockaddr as
// is: an AF_INET6 socket gives "::ffff:a.b.c.d" and family "IPv6" even when
// the peer speaks IPv4. Go keeps that distinction in the length of
// TCPAddr.IP (4 bytes from an AF_INET sockaddr, 16 from AF_INET6), so a
// not-yet-unmapped netip.Addr carries exactly what Node would see. Node
// prints no IPv6 zone (libuv's uv_ip6_name leaves it out), so neither do we.
func nodeAddress(a netip.Addr) (address, family string) {
	if !a.IsValid() {
		return "", ""
	}
	if a.Is4() {
		return a.String(), "IPv4"
	}
	return a.WithZone("").String(), "IPv6"
}

// unmap turns ::ffff:127.0.0.1 into 127.0.0.1: the wire carries plain IPv4,
// and the capture shows it that way.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
