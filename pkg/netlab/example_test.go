package netlab_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/tcp-playground/playground/pkg/client"
	"github.com/tcp-playground/playground/pkg/netlab"
	"github.com/tcp-playground/playground/pkg/server"
)

// A lesson on a link it controls: a server in the server namespace, a client
// in the client namespace, 50 ms each way, and the client's 3rd data segment
// lost once.
func Example() {
	ctx := context.Background()
	linkEvents := make(chan netlab.Event, 256) // the timeline's bounded queue
	lab, err := netlab.New(ctx, netlab.Config{Emit: func(e netlab.Event) {
		select {
		case linkEvents <- e:
		default: // a full timeline counts its losses; the link never waits
		}
	}})
	if err != nil {
		fmt.Println(err) // errors.Is(err, netlab.ErrPermission): run with sudo
		return
	}
	defer lab.Close()
	// Here the playground opens its captures (InServer: pcap on "tun0") and
	// then drops root; the lab keeps working.

	addr := netip.AddrPortFrom(netlab.ServerAddr(), 4000).String()
	var srv *server.Server
	err = lab.InServer(func() (err error) {
		srv, err = server.Start(ctx, server.Config{Addr: addr, Behavior: server.Echo}, func(server.Event) {})
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	// The lesson's step: a slow link that loses one segment.
	oneWay := netlab.Impairment{Delay: 50 * time.Millisecond}
	lab.SetLink(netlab.Link{
		ClientToServer: oneWay,
		ServerToClient: oneWay,
		Rules:          []netlab.Rule{netlab.DropNth(netlab.ClientToServer, netlab.MatchData, 3)},
	})

	var c *client.Client
	err = lab.InClient(func() (err error) {
		c, err = client.Dial(ctx, addr, func(client.Event) {})
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.Write(make([]byte, 10_000)) // 7 segments; the 3rd is lost, then retransmitted
	c.ReadFull(ctx, 10_000)

	st := lab.Stats()
	fmt.Println("dropped by the rule:", st.RuleHits[0])
	fmt.Println((<-linkEvents).Reason())
}
