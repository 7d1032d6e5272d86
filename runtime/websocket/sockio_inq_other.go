//go:build unix && !linux

package websocket

// inqRequest is 0 where the receive queue's length is not read: the
// keepalive then needs the pong read, as everywhere without a count (see
// unreadBytes).
const inqRequest = 0
