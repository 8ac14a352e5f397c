package client

import (
	"net"

	"golang.org/x/sys/unix"
)

// closeOutcome says, from the socket's own state just before close(2),
// what closing it will put on the wire: a FIN, nothing (the FIN already
// went out with CloseWrite, or the connection was reset or closed by the
// peer's RST), or an RST (unread bytes in the receive queue make Linux
// abort instead of closing).
func closeOutcome(conn *net.TCPConn) string {
	raw, err := conn.SyscallConn()
	if err != nil {
		return OutcomeFIN
	}
	outcome := OutcomeFIN
	raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return
		}
		unread, _ := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		switch info.State {
		case tcpClose:
			outcome = OutcomeNothingReset
		case tcpFinWait1, tcpFinWait2, tcpClosing, tcpLastAck, tcpTimeWait:
			outcome = OutcomeNothingFINSent
		default:
			if unread > 0 {
				outcome = OutcomeRST
			}
		}
	})
	return outcome
}

// Linux's TCP states (include/net/tcp_states.h).
const (
	tcpFinWait1 = 4
	tcpFinWait2 = 5
	tcpTimeWait = 6
	tcpClose    = 7
	tcpLastAck  = 9
	tcpClosing  = 11
)
