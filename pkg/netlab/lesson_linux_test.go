package netlab_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tcp-playground/playground/pkg/client"
	"github.com/tcp-playground/playground/pkg/netlab"
	"github.com/tcp-playground/playground/pkg/server"
)

// The playground's own server and client, each in its namespace, on a slow
// link that loses the client's 3rd data segment: what lesson 12 will do.
func TestPlaygroundServerAndClientThroughTheLab(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var linkEvents []netlab.Event
	lab, err := netlab.New(ctx, netlab.Config{Emit: func(e netlab.Event) {
		mu.Lock()
		linkEvents = append(linkEvents, e)
		mu.Unlock()
	}})
	if errors.Is(err, netlab.ErrPermission) {
		t.Skipf("needs root: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()

	addr := netip.AddrPortFrom(netlab.ServerAddr(), 4000).String()
	serverEvents := make(chan server.Event, 1024)
	var srv *server.Server
	err = lab.InServer(func() (err error) {
		srv, err = server.Start(ctx, server.Config{Addr: addr, Behavior: server.Echo}, func(e server.Event) { serverEvents <- e })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	oneWay := netlab.Impairment{Delay: 50 * time.Millisecond}
	if err := lab.SetLink(netlab.Link{
		ClientToServer: oneWay,
		ServerToClient: oneWay,
		Rules:          []netlab.Rule{netlab.DropNth(netlab.ClientToServer, netlab.MatchData, 3)},
	}); err != nil {
		t.Fatal(err)
	}

	var c *client.Client
	start := time.Now()
	err = lab.InClient(func() (err error) {
		c, err = client.Dial(ctx, addr, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("handshake over 50 ms each way took %v", d)
	}
	if got := c.Local().Addr(); got != netlab.ClientAddr() {
		t.Errorf("client address %v, want %v", got, netlab.ClientAddr())
	}
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got, err := c.ReadFull(rctx, len(data))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo: %d bytes, %v", len(got), err)
	}
	if hits := lab.Stats().RuleHits; hits[0] != 1 {
		t.Errorf("rule hits %v, want [1]", hits)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(linkEvents) != 1 || linkEvents[0].Kind != netlab.Dropped {
		t.Fatalf("link events %v", linkEvents)
	}
	for {
		select {
		case e := <-serverEvents:
			if e.Kind == server.Connection {
				if e.Remote.Addr() != netlab.ClientAddr() {
					t.Errorf("server saw %v", e.Remote)
				}
				return
			}
		default:
			t.Fatal("no connection event from the server")
		}
	}
}
