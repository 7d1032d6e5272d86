//go:build unix && !linux

package websocket

// inqRequest is 0 where the receive queue's length is not read: the
// keepalive then needs the pong read, as everywhere without a count (see
// unreadBytes).
const inqRequest = 0

// outqRequest is 0 where the send queue's length is not read: a write
// deadline then fails a write the poller did not wake with progress in
// time, however the peer reads (see peerReads).
const outqRequest = 0
