package kernel

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// QueueChange is a socket whose queue numbers changed since the last poll,
// or that appeared or went away.
type QueueChange struct {
	// Time the poll that saw the change was made.
	Time time.Time
	// Socket as that poll saw it; for a socket gone, as the poll before
	// saw it last.
	Socket Socket
	// Gone: the socket is no longer there (closed, or out of the filter).
	Gone bool
}

// queueNumbers are what WatchQueues compares between polls. RTT and the
// congestion window are left out: they change all the time on a busy
// connection, which would report it at every poll.
type queueNumbers struct {
	state                State
	acceptQueue, backlog uint32
	recvQueue, sendQueue uint32
	rcvWnd, sndWnd       uint32
}

func queueNumbersOf(s *Socket) queueNumbers {
	q := queueNumbers{
		state:       s.State,
		acceptQueue: s.AcceptQueue,
		backlog:     s.Backlog,
		recvQueue:   s.RecvQueue,
		sendQueue:   s.SendQueue,
	}
	if s.Info != nil {
		q.rcvWnd, q.sndWnd = s.Info.RcvWnd, s.Info.SndWnd
	}
	return q
}

// socketKey identifies a socket between polls.
type socketKey struct {
	cookie        uint64
	local, remote netip.AddrPort
}

// WatchQueues polls Sockets(filter) every interval and calls report for each
// socket that appeared, went away, or whose state, queues or windows
// changed since the poll before; an unchanged socket is not reported again.
// It returns nil when ctx is done, or the error of a poll that failed.
func WatchQueues(ctx context.Context, filter Filter, interval time.Duration, report func(QueueChange)) error {
	if interval <= 0 {
		return fmt.Errorf("WatchQueues: interval %v, want more than 0", interval)
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	type seen struct {
		socket  Socket
		numbers queueNumbers
	}
	last := map[socketKey]seen{}
	for {
		sockets, err := Sockets(filter)
		if err != nil {
			return err
		}
		now := time.Now()
		current := make(map[socketKey]seen, len(sockets))
		for _, s := range sockets {
			key := socketKey{s.Cookie, s.Local, s.Remote}
			numbers := queueNumbersOf(&s)
			current[key] = seen{s, numbers}
			if before, ok := last[key]; !ok || before.numbers != numbers {
				report(QueueChange{Time: now, Socket: s})
			}
		}
		for key, before := range last {
			if _, ok := current[key]; !ok {
				report(QueueChange{Time: now, Socket: before.socket, Gone: true})
			}
		}
		last = current

		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// TimeWaitOf looks for the TIME_WAIT socket that a FIN_WAIT2→CLOSE change
// may have left (see StateChange.MaybeTimeWait): the tracepoint does not
// report TIME_WAIT, sock_diag lists it. ok is false when there is none (the
// FIN_WAIT2 timed out, or TIME_WAIT is over already).
func TimeWaitOf(c StateChange) (s Socket, ok bool, err error) {
	sockets, err := Sockets(Filter{Ports: []uint16{c.Local.Port()}, States: []State{TimeWait}})
	if err != nil {
		return Socket{}, false, err
	}
	for _, s := range sockets {
		if s.Local == c.Local && s.Remote == c.Remote {
			return s, true, nil
		}
	}
	return Socket{}, false, nil
}
