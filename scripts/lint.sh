#!/usr/bin/env bash
# gofmt, go vet and go mod tidy (library and bench module), buf lint.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^gen/' ) $(git ls-files --others --exclude-standard '*.go' | grep -v '^gen/') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
	echo "gofmt needed:" $unformatted >&2
	exit 1
fi
go vet ./...
go mod tidy -diff
if [ -f bench/go.mod ]; then
	(cd bench && go vet ./... && go mod tidy -diff)
fi
if [ -f buf.yaml ]; then
	ensure_buf
	buf lint
fi
echo "lint ok"
