#!/usr/bin/env bash
# gofmt, go vet (this system and four others) and go mod tidy (library and bench module), buf lint.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^gen/' ) $(git ls-files --others --exclude-standard '*.go' | grep -v '^gen/') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
	echo "gofmt needed:" $unformatted >&2
	exit 1
fi
go vet ./...
# The library builds everywhere Go runs, tests included: vet the systems
# without the Linux-only paths and a 32-bit one (int is 32 bits there, so
# a length or flag converted to int can overflow).
for target in darwin/arm64 windows/amd64 freebsd/amd64 linux/386; do
	GOOS=${target%/*} GOARCH=${target#*/} go vet ./...
done
go mod tidy -diff
if [ -f bench/go.mod ]; then
	(cd bench && go vet ./... && go mod tidy -diff)
fi
if [ -f buf.yaml ]; then
	ensure_buf
	buf lint
fi
echo "lint ok"
