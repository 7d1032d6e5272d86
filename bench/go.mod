module github.com/wsrpc/wsrpc/bench

go 1.26.0

require github.com/wsrpc/wsrpc v0.0.0

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/ws v1.5.0 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/lxzan/gws v1.8.9 // indirect
)

replace github.com/wsrpc/wsrpc => ../
