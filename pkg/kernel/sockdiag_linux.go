package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sock_diag's request and reply, from include/uapi/linux/inet_diag.h. They
// are in host byte order, except the ports and addresses in inet_diag_sockid,
// which are in network byte order.
const (
	sizeofInetDiagReqV2 = 56
	sizeofInetDiagMsg   = 72
	sizeofRtAttr        = 4

	inetDiagReqBytecode = 1 // request attribute: a filter program
	inetDiagInfo        = 2 // reply attribute: struct tcp_info

	// Filter program operations (enum in inet_diag.h).
	inetDiagBCJmp = 1
	inetDiagBCSGE = 2
	inetDiagBCSLE = 3
	inetDiagBCDGE = 4
	inetDiagBCDLE = 5

	// diagReplyTimeout bounds a dump, which the kernel answers at once.
	diagReplyTimeout = 2 * time.Second
)

// Sockets returns the TCP sockets, IPv4 and IPv6, that the filter selects,
// as `ss -tanmi` lists them. The kernel filters them (inet_diag bytecode), so
// the cost does not grow with the machine's other sockets. It needs no
// privileges. It sees the sockets of the calling thread's network
// namespace.
func Sockets(filter Filter) ([]Socket, error) {
	d, err := OpenDiag()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Sockets(filter)
}

// Diag is an open sock_diag socket, for a caller that asks again and again.
// It answers for the network namespace of the thread that opened it, from
// whichever thread asks later: a lab's namespace stays reachable from any
// goroutine. It is not safe for concurrent use.
type Diag struct {
	fd  int
	seq uint32
}

// OpenDiag opens a sock_diag socket in the calling thread's namespace.
func OpenDiag() (*Diag, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: opening a netlink socket: %w", err)
	}
	timeout := unix.NsecToTimeval(diagReplyTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &timeout); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	return &Diag{fd: fd}, nil
}

// Close closes the socket.
func (d *Diag) Close() error { return unix.Close(d.fd) }

// Sockets is the package's Sockets, asked on d. Each dump has its own
// sequence number, so a reply left over from a dump that timed out is
// skipped, not mistaken for this one's.
func (d *Diag) Sockets(filter Filter) ([]Socket, error) {
	bytecode := portFilterBytecode(filter.Ports)
	var sockets []Socket
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		d.seq++
		found, err := dumpSockets(d.fd, d.seq, family, filter.stateMask(), bytecode)
		if errors.Is(err, unix.EINVAL) && bytecode != nil {
			// The kernel rejected the filter program: filter here
			// instead, at the cost of a reply with every socket.
			bytecode = nil
			d.seq++
			found, err = dumpSockets(d.fd, d.seq, family, filter.stateMask(), nil)
		}
		if err != nil {
			return nil, err
		}
		for _, s := range found {
			if filter.matches(&s) {
				sockets = append(sockets, s)
			}
		}
	}
	return sockets, nil
}

// dumpSockets sends one inet_diag_req_v2 dump request and reads its reply.
func dumpSockets(fd int, seq uint32, family uint8, states uint32, bytecode []byte) ([]Socket, error) {
	req := make([]byte, unix.SizeofNlMsghdr+sizeofInetDiagReqV2, unix.SizeofNlMsghdr+sizeofInetDiagReqV2+sizeofRtAttr+len(bytecode))
	ne := binary.NativeEndian
	body := req[unix.SizeofNlMsghdr:]
	body[0] = family
	body[1] = unix.IPPROTO_TCP
	body[2] = 1 << (inetDiagInfo - 1) // idiag_ext: ask for tcp_info
	ne.PutUint32(body[4:], states)
	// The sockid stays zero: a dump ignores it.
	if bytecode != nil {
		attr := make([]byte, sizeofRtAttr, sizeofRtAttr+len(bytecode))
		ne.PutUint16(attr[0:], uint16(sizeofRtAttr+len(bytecode)))
		ne.PutUint16(attr[2:], inetDiagReqBytecode)
		req = append(req, append(attr, bytecode...)...)
	}
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], seq)

	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag: sending the request: %w", err)
	}

	var sockets []Socket
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				err = os.ErrDeadlineExceeded
			}
			return nil, fmt.Errorf("sock_diag: reading the reply: %w", err)
		}
		msgs := buf[:n]
		for len(msgs) >= unix.SizeofNlMsghdr {
			msgLen := int(ne.Uint32(msgs[0:]))
			msgType := ne.Uint16(msgs[4:])
			msgSeq := ne.Uint32(msgs[8:])
			if msgLen < unix.SizeofNlMsghdr || msgLen > len(msgs) {
				return nil, fmt.Errorf("sock_diag: malformed netlink message")
			}
			payload := msgs[unix.SizeofNlMsghdr:msgLen]
			msgs = msgs[min(nlmsgAlign(msgLen), len(msgs)):]
			if msgSeq != seq {
				continue
			}
			switch msgType {
			case unix.NLMSG_DONE:
				return sockets, nil
			case unix.NLMSG_ERROR:
				if len(payload) < 4 {
					return nil, fmt.Errorf("sock_diag: malformed error message")
				}
				if errno := -int32(ne.Uint32(payload)); errno != 0 {
					return nil, fmt.Errorf("sock_diag: %w", unix.Errno(errno))
				}
			case unix.SOCK_DIAG_BY_FAMILY:
				s, ok := parseInetDiagMsg(payload)
				if ok {
					sockets = append(sockets, s)
				}
			}
		}
	}
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

func rtaAlign(n int) int { return (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1) }

// parseInetDiagMsg reads an inet_diag_msg and its attributes.
func parseInetDiagMsg(b []byte) (Socket, bool) {
	if len(b) < sizeofInetDiagMsg {
		return Socket{}, false
	}
	ne := binary.NativeEndian
	family := b[0]
	s := Socket{
		State:       State(b[1]),
		Timer:       Timer(b[2]),
		Retransmits: b[3],
		TimerLeft:   time.Duration(ne.Uint32(b[52:])) * time.Millisecond,
		UID:         ne.Uint32(b[64:]),
		Inode:       ne.Uint32(b[68:]),
		Cookie:      uint64(ne.Uint32(b[48:]))<<32 | uint64(ne.Uint32(b[44:])),
	}
	// inet_diag_sockid starts at byte 4.
	sport, dport := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	switch family {
	case unix.AF_INET:
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[8:12])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[24:28])), dport)
	case unix.AF_INET6:
		s.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[24:40])), dport)
	default:
		return Socket{}, false
	}
	// For a listener the kernel puts the accept queue in idiag_rqueue and
	// the backlog in idiag_wqueue (inet_diag_get_info / tcp_diag).
	rqueue, wqueue := ne.Uint32(b[56:]), ne.Uint32(b[60:])
	if s.State == Listen {
		s.AcceptQueue, s.Backlog = rqueue, wqueue
	} else {
		s.RecvQueue, s.SendQueue = rqueue, wqueue
	}
	if s.Timer == TimerOff {
		s.TimerLeft = 0
	}

	for attrs := b[sizeofInetDiagMsg:]; len(attrs) >= sizeofRtAttr; {
		attrLen := int(ne.Uint16(attrs[0:]))
		attrType := ne.Uint16(attrs[2:])
		if attrLen < sizeofRtAttr || attrLen > len(attrs) {
			break
		}
		if attrType == inetDiagInfo {
			s.Info = parseTCPInfo(attrs[sizeofRtAttr:attrLen])
		}
		attrs = attrs[min(rtaAlign(attrLen), len(attrs)):]
	}
	return s, true
}

// parseTCPInfo reads struct tcp_info, which grows with the kernel: fields
// past what this kernel sent stay zero, and the Has flags say so.
func parseTCPInfo(b []byte) *TCPInfo {
	var raw unix.TCPInfo
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&raw)), unsafe.Sizeof(raw)), b)
	has := func(offset uintptr) bool { return uintptr(len(b)) >= offset+4 }
	return &TCPInfo{
		RTT:           time.Duration(raw.Rtt) * time.Microsecond,
		RTTVar:        time.Duration(raw.Rttvar) * time.Microsecond,
		SndCwnd:       raw.Snd_cwnd,
		SndSsthresh:   raw.Snd_ssthresh,
		Unacked:       raw.Unacked,
		CAState:       CAState(raw.Ca_state),
		SndMSS:        raw.Snd_mss,
		RcvMSS:        raw.Rcv_mss,
		RcvWnd:        raw.Rcv_wnd,
		HasRcvWnd:     has(unsafe.Offsetof(raw.Rcv_wnd)),
		SndWnd:        raw.Snd_wnd,
		HasSndWnd:     has(unsafe.Offsetof(raw.Snd_wnd)),
		BytesAcked:    raw.Bytes_acked,
		BytesReceived: raw.Bytes_received,
		TotalRetrans:  raw.Total_retrans,
	}
}

// portFilterBytecode compiles "the local or remote port is one of ports"
// into an inet_diag filter program, or returns nil for no ports.
//
// A program is a list of operations {code, yes, no} (4 bytes); a port
// comparison is followed by a 4-byte operand whose "no" field holds the
// port. The kernel runs it from the start: a comparison that holds jumps
// ahead by yes bytes, one that fails by no bytes; JMP always jumps by no. The
// socket is selected when the program ends exactly at its last byte, and
// rejected when a jump lands 4 bytes past it. The kernel's audit of the
// program walks the yes jumps, which here pass through every operation.
//
// port == p is written port >= p && port <= p, with the comparisons every
// kernel has (INET_DIAG_BC_S_EQ is younger). Each alternative, 16 bytes, is
// followed by a JMP to the end (selected); a failed comparison jumps to the
// next alternative, the last one's to 4 bytes past the end (rejected): ss
// compiles an OR the same way.
func portFilterBytecode(ports []uint16) []byte {
	if len(ports) == 0 {
		return nil
	}
	type alternative struct {
		ge, le uint8 // the two comparisons of a port's equality
		port   uint16
	}
	var alternatives []alternative
	for _, p := range ports {
		alternatives = append(alternatives,
			alternative{inetDiagBCSGE, inetDiagBCSLE, p},
			alternative{inetDiagBCDGE, inetDiagBCDLE, p})
	}
	const cmpLen, altLen, jmpLen = 8, 16, 4
	total := len(alternatives)*altLen + (len(alternatives)-1)*jmpLen

	ne := binary.NativeEndian
	op := func(b []byte, code, yes uint8, no uint16) []byte {
		b = append(b, code, yes)
		return ne.AppendUint16(b, no)
	}
	prog := make([]byte, 0, total)
	for i, alt := range alternatives {
		// From the >= to the next alternative (or to 4 bytes past the
		// end, for the last) is altLen+jmpLen; from the <=, cmpLen+jmpLen.
		prog = op(prog, alt.ge, cmpLen, altLen+jmpLen)
		prog = op(prog, 0, 0, alt.port)
		prog = op(prog, alt.le, cmpLen, cmpLen+jmpLen)
		prog = op(prog, 0, 0, alt.port)
		if i < len(alternatives)-1 {
			rest := total - len(prog) // from this JMP to the end
			prog = op(prog, inetDiagBCJmp, jmpLen, uint16(rest))
		}
	}
	return prog
}
