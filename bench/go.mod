module github.com/wsrpc/wsrpc/bench

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/gobwas/ws v1.5.0
	github.com/gorilla/websocket v1.5.3
	github.com/klauspost/compress v1.20.3
	github.com/lxzan/gws v1.8.9
	github.com/wsrpc/wsrpc v0.0.0
)

require (
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/gobwas/httphead v0.1.0 // indirect
)

replace github.com/wsrpc/wsrpc => ../
