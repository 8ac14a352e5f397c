// Package capture turns captured frames into annotated TCP segments, in
// pure Go: it reads pcap and pcapng files (each pcapng interface by its own
// link type), decodes Ethernet, Linux cooked (SLL, SLL2), BSD loopback and
// raw IP frames, tracks connections (relative sequence numbers, the steps
// of the handshake and the teardown, tshark's stream numbers) and makes
// Wireshark's TCP analysis remarks by Wireshark's rules. It returns typed
// Segment values and never prints; the words a learner reads about a
// segment live with the views, in package timeline.
//
// Live capture needs libpcap, and so cgo: it is package capture/live,
// which hands its frames to this package's Reader through FrameSource.
// Writer writes frames back to pcap or pcapng files.
package capture
