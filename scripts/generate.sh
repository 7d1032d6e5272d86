#!/usr/bin/env bash
# Regenerates gen/ from proto/ with the pinned buf and local plugins built
# from go.mod's versions (bin/ is put first on PATH for buf generate).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
[ -f buf.gen.yaml ] || { echo "no buf.gen.yaml; nothing to generate"; exit 0; }
ensure_buf
mkdir -p bin
go build -o bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
# Our own plugin is built only once it exists; buf.gen.yaml lists it then.
if compgen -G 'cmd/protoc-gen-wsrpc/*.go' >/dev/null; then
	go build -o bin/protoc-gen-wsrpc ./cmd/protoc-gen-wsrpc
fi
PATH="$PWD/bin:$PATH" buf generate
