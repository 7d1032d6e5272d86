#!/usr/bin/env bash
# The soak of docs/reliability.md: N WebSocket clients and SSE subscribers
# for DURATION against a server in its own process, on loopback.
#   make soak                                   # 10m, 10,000 WS, 1,000 SSE
#   DURATION=1m N=2000 SSE=200 make soak
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/soak
go build -o "$bin" ./internal/soak/cmd/soak
exec "$bin" -duration "${DURATION:-10m}" -ws "${N:-10000}" -sse "${SSE:-1000}" \
	-msg-every "${MSG_EVERY:-2s}" -ping-every "${PING_EVERY:-5s}"
