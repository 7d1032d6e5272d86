#!/usr/bin/env bash
# Runs every native fuzz target for $1 (default 30s) each; the seed corpus
# under testdata/fuzz is kept in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-30s}"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "fuzz $pkg $target ($fuzztime)"
		go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" >/tmp/wsrpc-fuzz.log 2>&1 || { cat /tmp/wsrpc-fuzz.log; exit 1; }
	done
done
