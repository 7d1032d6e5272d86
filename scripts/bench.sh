#!/usr/bin/env bash
# Microbenchmarks of the library, then the cross-library comparison in
# bench/ when it exists (its own go.mod). Results go to stdout; copy the
# figures into docs/benchmarks.md with the command that produced them.
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./runtime/... . -run '^$' -bench "${BENCH:-.}" -benchmem -count "${COUNT:-1}"
if [ -f bench/go.mod ] && [ -x bench/run.sh ]; then
	bench/run.sh
fi
