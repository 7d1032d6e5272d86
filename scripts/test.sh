#!/usr/bin/env bash
# The one test command (make test; .ci/run calls it). It installs what it
# needs, so it works on a fresh machine:
#   1. lint (gofmt, go vet, buf lint)
#   2. regenerate gen/ and fail on any difference
#   3. npm peers for interop tests, chromium for browser tests
#   4. go test -race ./..., the allocation pass, the runtime and CLI on
#      linux/386, and the bench module's tests
#   5. every fuzz target briefly
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
start=$(date +%s)

echo "== lint"
bash scripts/lint.sh

echo "== generate (must match the checked-in gen/)"
bash scripts/generate.sh
if [ -n "$(git status --porcelain -- gen)" ]; then
	echo "gen/ differs from what buf generate produces; run 'make generate' and commit:" >&2
	git status --porcelain -- gen >&2
	git --no-pager diff --stat -- gen >&2
	exit 1
fi

echo "== peers"
ensure_node_peers
ensure_chromium || echo "warning: chromium could not be installed; browser tests will fail" >&2

echo "== go test -race"
set +e
go test -race -count=1 -timeout 20m ./... 2>&1 | tee /tmp/wsrpc-test.log
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" != 0 ]; then
	echo "go test failed" >&2
	exit "$rc"
fi
echo "== allocation tests (without -race: its sync.Pool drops items at random)"
go test -count=1 -run 'Allocs' . ./runtime/...

echo "== 32-bit (linux/386, no -race there): the runtime and the command line"
GOARCH=386 go test -count=1 -timeout 10m ./runtime/... ./cmd/...

if [ -f bench/go.mod ]; then
	(cd bench && go test -count=1 -timeout 10m ./...)
fi

echo "== fuzz (brief)"
bash scripts/fuzz.sh "${FUZZTIME:-4s}"

echo "== all green in $(( $(date +%s) - start ))s"
