package netlab

import (
	"net/netip"
	"sync/atomic"
)

// The lab's addresses, all from the documentation ranges (RFC 5737, RFC
// 3849), which no real network routes: whatever a lesson sends inside the
// lab, it cannot reach anyone.
var (
	clientPrefix4 = netip.MustParsePrefix("192.0.2.1/24")
	serverPrefix4 = netip.MustParsePrefix("198.51.100.1/24")
	clientPrefix6 = netip.MustParsePrefix("2001:db8:1::1/64")
	serverPrefix6 = netip.MustParsePrefix("2001:db8:2::1/64")
)

// DefaultMTU is the TUN devices' MTU when Config.MTU is 0: Ethernet's, so
// segments look as they do on a real network (MSS 1460, or 1448 with
// timestamps).
const DefaultMTU = 1500

// TUNName is the name of the link's device in each namespace, for a packet
// capture opened inside it.
const TUNName = "tun0"

// Config describes a lab to make.
type Config struct {
	// Link is the link's state at start; the zero Link is a perfect wire.
	Link Link
	// MTU of both TUN devices; 0 means DefaultMTU.
	MTU int
	// Emit, if not nil, receives an Event for each packet the link
	// dropped, duplicated or held back. It is called from the forwarding
	// goroutines and must not block (a bounded queue is typical): while it
	// runs, that direction of the link stands still.
	Emit func(Event)
}

// ClientAddr is the client namespace's IPv4 address, 192.0.2.1.
func ClientAddr() netip.Addr { return clientPrefix4.Addr() }

// ServerAddr is the server namespace's IPv4 address, 198.51.100.1.
func ServerAddr() netip.Addr { return serverPrefix4.Addr() }

// ClientAddr6 is the client namespace's IPv6 address, 2001:db8:1::1
// (usable when Lab.HasIPv6).
func ClientAddr6() netip.Addr { return clientPrefix6.Addr() }

// ServerAddr6 is the server namespace's IPv6 address, 2001:db8:2::1
// (usable when Lab.HasIPv6).
func ServerAddr6() netip.Addr { return serverPrefix6.Addr() }

// ruleStates splits rules by direction, each direction with its own count of
// occurrences and a hit counter per rule shared by both.
func ruleStates(rules []Rule) (c2s, s2c []ruleState, hits []*atomic.Uint64) {
	hits = make([]*atomic.Uint64, len(rules))
	for i, r := range rules {
		hits[i] = new(atomic.Uint64)
		st := ruleState{rule: r, index: i, name: r.String(), hits: hits[i]}
		if r.Direction == 0 || r.Direction&ClientToServer != 0 {
			c2s = append(c2s, st)
		}
		if r.Direction == 0 || r.Direction&ServerToClient != 0 {
			s2c = append(s2c, st)
		}
	}
	return c2s, s2c, hits
}
