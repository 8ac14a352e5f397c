package timeline

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tcp-playground/playground/pkg/client"
	"github.com/tcp-playground/playground/pkg/server"
)

// ProgramSummary is what a server or client event says, in the terms of the
// code that saw it: "connection from 127.0.0.1:53782 (IPv4)", "5 bytes".
func ProgramSummary(e *Event) string {
	switch e.Source {
	case SourceServer:
		ev := e.Server
		switch ev.Kind {
		case server.Listening:
			return "listening on " + ev.Local.String()
		case server.Connection:
			// The socket info the notes log, by Node's names.
			return fmt.Sprintf("connection from %s · remoteAddress %s remotePort %d remoteFamily %s · address() %s",
				ev.Remote, ev.NodeRemoteAddress, ev.Remote.Port(), ev.Family, ev.Local)
		case server.Data, server.Write:
			return Plural(e.PayloadLen(), "byte") + errSuffix(ev.Err)
		case server.Close:
			if ev.Detail != "" {
				return ev.Detail + errSuffix(ev.Err)
			}
			return "closed" + errSuffix(ev.Err)
		case server.Error:
			return ev.Detail + errSuffix(ev.Err)
		}
	case SourceClient:
		ev := e.Client
		switch ev.Kind {
		case client.Dialing:
			return "connect to " + ev.Remote.String()
		case client.Connected:
			return "connected from " + ev.Local.String()
		case client.Write, client.Read:
			if errors.Is(ev.Err, io.EOF) {
				return "end of stream (the server sent FIN)"
			}
			return Plural(e.PayloadLen(), "byte") + errSuffix(ev.Err)
		case client.HalfClose, client.Close, client.Abort, client.Error:
			return ev.Detail + errSuffix(ev.Err)
		}
	}
	return ""
}

// ProgramNote explains a server or client event for a learner.
func ProgramNote(e *Event) string {
	switch e.Source {
	case SourceServer:
		switch e.Server.Kind {
		case server.Listening:
			return "the kernel now answers connections to port " + strconv.Itoa(int(e.Server.Local.Port())) + "; nothing is sent"
		case server.Connection:
			return "your code sees it only now: the kernel already did the handshake"
		case server.Data:
			return "one read returned these bytes"
		case server.Write:
			return writeNote("your code", e.PayloadLen(), e.Server.Err)
		case server.Close:
			if e.Server.Conn == 0 {
				return "the server stops listening"
			}
			return "the socket's close event"
		}
	case SourceClient:
		switch e.Client.Kind {
		case client.Dialing:
			return "connect(): the client's kernel sends SYN"
		case client.Connected:
			return "connect() returned: the handshake is done"
		case client.Write:
			return writeNote("the client", e.PayloadLen(), e.Client.Err)
		case client.Read:
			return "one read returned"
		case client.HalfClose:
			return "CloseWrite(): FIN, but the client still reads"
		case client.Close:
			// The client looked at its socket before closing it: say what
			// really went on the wire.
			switch {
			case strings.HasSuffix(e.Client.Detail, client.OutcomeNothingFINSent):
				return "Close(): its FIN already went out with CloseWrite, so nothing more is sent"
			case strings.HasSuffix(e.Client.Detail, client.OutcomeNothingReset):
				return "Close(): the connection was already reset, so nothing is sent"
			case strings.HasSuffix(e.Client.Detail, client.OutcomeRST):
				return "Close() with unread bytes waiting: the kernel sends RST, not FIN"
			}
			return "Close(): the client's kernel sends FIN"
		case client.Abort:
			return "SetLinger(0) then Close(): the kernel sends RST"
		}
	}
	return ""
}

// writeNote says what a write call did, from its result: n is what the
// call reports as written.
func writeNote(who string, n int, err error) string {
	switch {
	case err == nil:
		return who + " handed the bytes to the kernel"
	case n > 0:
		return "the kernel took " + Plural(n, "byte") + ", then the write failed"
	}
	return "the write failed: the kernel took none of these bytes"
}

func errSuffix(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return ""
	}
	return ": " + err.Error()
}

// addrString is "" for an unset address, so JSON can omit it.
func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
