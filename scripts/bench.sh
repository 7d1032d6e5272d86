#!/usr/bin/env bash
# Microbenchmarks of the library, then the cross-library comparison in
# bench/ when it exists (its own go.mod). Results go to stdout; copy the
# figures into docs/benchmarks.md with the command that produced them.
set -euo pipefail
cd "$(dirname "$0")/.."
# Half a second per benchmark: plenty for operations of nanoseconds to
# microseconds, and it keeps a whole `make bench` from a cold module and
# build cache inside issue 7's ten minutes (at 1 s, 620 s on this machine).
go test ./runtime/... . -run '^$' -bench "${BENCH:-.}" -benchmem -count "${COUNT:-1}" -benchtime "${BENCHTIME:-500ms}"
if [ -f bench/go.mod ] && [ -x bench/run.sh ]; then
	bench/run.sh
fi
