#!/usr/bin/env bash
# Cross-library comparison (issue 7): every echo server in cmd/echoserver
# plus npm ws (node/), driven by one load client (cmd/loadclient) that
# checks every echoed byte. Server on core 0, client on core 1 (taskset), a
# fresh server process per run, servers interleaved in rotating rounds.
# Prints a markdown table (medians, min–max, ratios, targets) and writes it
# to results/latest.md; raw runs go to results/latest.tsv.
#
#   bench/run.sh                 default: 5 rounds, 0.5 s per cell (~7½ min)
#   QUICK=1 bench/run.sh         a few seconds: 1 round, short cells
#   ROUNDS=5 DURATION=3s LIBS="wsrpc gws tcp" CELLS="rr-64-1k idle" bench/run.sh
#
# tcp-twin is a second raw TCP server, identical to tcp, run in the
# request/response cells only: what the two measure differently in one run
# is the machine's noise (an A/A test), the yardstick for every other
# difference in those rows. It sits half a round away from tcp so that the
# pair sees as much drift as any two servers in the table.
set -euo pipefail
cd "$(dirname "$0")"

if [ "${QUICK:-0}" = 1 ]; then
	ROUNDS=${ROUNDS:-1}
	DURATION=${DURATION:-200ms}
	WARMUP=${WARMUP:-50ms}
	IDLE_CONNS=${IDLE_CONNS:-500}
	IDLE_SETTLE=${IDLE_SETTLE:-200ms}
	CELLS=${CELLS:-"rr-64-1k pipe-64-1k deflate-64-1k idle-handoff"}
	MICRO=${MICRO:-0}
fi
# Five short rounds rather than three long ones: this machine has slow
# spells of a few seconds, and a median of five lands in one less often.
# Short enough that make bench (engine microbenchmarks, ~2 min, then this)
# stays under 10 minutes.
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-500ms}
WARMUP=${WARMUP:-200ms}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_SETTLE=${IDLE_SETTLE:-500ms}
MICRO=${MICRO:-1}
LIBS=${LIBS:-"wsrpc wsrpc-loop gorilla tcp-twin coder gws gobwas ws tcp"}
CELLS=${CELLS:-"rr-1-16 rr-1-1k rr-1-64k rr-64-16 rr-64-1k rr-64-64k pipe-64-1k deflate-64-1k idle idle-handoff"}

work=$(mktemp -d)
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "building" >&2
go build -o "$work/" ./cmd/echoserver ./cmd/loadclient ./cmd/report
if [[ " $LIBS " == *" ws "* ]]; then
	if command -v node >/dev/null 2>&1; then
		(cd node && npm ci --no-audit --no-fund --loglevel=error >&2)
	else
		echo "node not found: skipping npm ws" >&2
		LIBS=$(printf '%s\n' $LIBS | grep -vx ws | tr '\n' ' ')
	fi
fi

# Pin only when there are two cores to pin to.
srv_pin=() cli_pin=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	srv_pin=(taskset -c 0) cli_pin=(taskset -c 1)
fi

cell_args() { # cell -> deflate flag, handoff flag and client args
	case "$1" in
	rr-1-16) echo "no no -scenario echo -conns 1 -size 16" ;;
	rr-1-1k) echo "no no -scenario echo -conns 1 -size 1024" ;;
	rr-1-64k) echo "no no -scenario echo -conns 1 -size 65536" ;;
	rr-64-16) echo "no no -scenario echo -conns 64 -size 16" ;;
	rr-64-1k) echo "no no -scenario echo -conns 64 -size 1024" ;;
	rr-64-64k) echo "no no -scenario echo -conns 64 -size 65536" ;;
	pipe-64-1k) echo "no no -scenario echo -conns 64 -size 1024 -inflight 16" ;;
	deflate-64-1k) echo "yes no -scenario deflate -conns 64" ;;
	idle) echo "no no -scenario idle -conns $IDLE_CONNS" ;;
	idle-handoff) echo "no yes -scenario idle -conns $IDLE_CONNS" ;;
	*) echo "unknown cell $1" >&2; return 1 ;;
	esac
}

start_server() { # lib deflate handoff -> sets server_pid, server_addr
	local lib=$1 deflate=$2 handoff=$3 out="$work/server.out"
	: >"$out"
	if [ "$lib" = ws ]; then
		local flag=()
		[ "$deflate" = yes ] && flag=(--deflate)
		"${srv_pin[@]}" node node/echoserver.js "${flag[@]}" >"$out" 2>"$work/server.err" &
	else
		"${srv_pin[@]}" "$work/echoserver" -lib "${lib%-twin}" -deflate="$([ "$deflate" = yes ] && echo true || echo false)" \
			-handoff="$([ "$handoff" = yes ] && echo true || echo false)" >"$out" 2>"$work/server.err" &
	fi
	server_pid=$!
	for _ in $(seq 100); do
		if grep -q '^ready' "$out"; then
			server_addr=$(sed -n 's/^ready .*addr=\([^ ]*\).*/\1/p' "$out")
			return 0
		fi
		sleep 0.05
	done
	echo "server $lib did not start: $(cat "$work/server.err")" >&2
	return 1
}

stop_server() {
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

supports() { # lib deflate
	[ "$2" = no ] || [ "$1" != gobwas ]
}

mkdir -p results
raw=results/latest.tsv
: >"$raw"
read -r -a libs <<<"$LIBS"
n=${#libs[@]}
start=$(date +%s)
for ((round = 0; round < ROUNDS; round++)); do
	echo "round $((round + 1))/$ROUNDS (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	for c in $CELLS; do
		read -r deflate handoff args <<<"$(cell_args "$c")"
		for ((k = 0; k < n; k++)); do
			lib=${libs[$(((k + round) % n))]}
			supports "$lib" "$deflate" || continue
			[[ $lib == tcp-twin && $c != rr-* ]] && continue
			start_server "$lib" "$deflate" "$handoff"
			extra=()
			[[ $lib == tcp* ]] && extra+=(-tcp)
			extra+=(-pid "$server_pid")
			dur=$DURATION
			[[ $c == idle* ]] && dur=$IDLE_SETTLE
			# shellcheck disable=SC2086
			ok=0
			for attempt in 1 2; do # one retry: a timeout on an overloaded machine is not a verdict
				if line=$("${cli_pin[@]}" "$work/loadclient" -addr "$server_addr" $args -warmup "$WARMUP" -duration "$dur" "${extra[@]}" 2>&1); then
					ok=1
					break
				fi
				if [[ $line == *differ* || $line == *inflate* || $attempt == 2 ]]; then
					break # a wrong byte is never retried
				fi
				echo "  retrying $c $lib after: $line" >&2
				stop_server
				start_server "$lib" "$deflate" "$handoff"
				extra=(-pid "$server_pid")
				[[ $lib == tcp* ]] && extra+=(-tcp)
			done
			if [ "$ok" = 1 ]; then
				if [[ $c == idle* ]]; then
					val=$(sed -n 's/.*bytes_per_conn=\([^ ]*\).*/\1/p' <<<"$line")
				else
					val=$(sed -n 's/.*msgs_per_s=\([^ ]*\).*/\1/p' <<<"$line")
				fi
				wire=$(sed -n 's/.*wire_ratio=\([^ ]*\).*/\1/p' <<<"$line")
				tk=$(sed -n 's/.*takeover=\([^ ]*\).*/\1/p' <<<"$line")
				cpu=$(sed -n 's/.*cpu_us_per_msg=\([^ ]*\).*/\1/p' <<<"$line")
				user=$(sed -n 's/.*user_us_per_msg=\([^ ]*\).*/\1/p' <<<"$line")
				printf '%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n' "$c" "$lib" "$round" "$val" "${wire:-0}" "${tk:-false}" "${cpu:-0}" "${user:-0}" >>"$raw"
				echo "  $c $lib: $line" >&2
			else
				echo "FAIL $c $lib: $line" >&2
				stop_server
				exit 1
			fi
			stop_server
		done
	done
done

# Columns: the run order, with the A/A twin moved last, beside tcp.
cols=()
for lib in "${libs[@]}"; do
	[ "$lib" = tcp-twin ] || cols+=("$lib")
done
[[ " $LIBS " == *" tcp-twin "* ]] && cols+=(tcp-twin)

micro=
if [ "$MICRO" = 1 ]; then
	echo "microbenchmarks (internal/micro)" >&2
	micro=$(go test -run '^$' -bench . -benchmem -benchtime "${MICRO_TIME:-200ms}" ./internal/micro | grep -E '^Benchmark')
fi

{
	echo "Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(uname -sm), $(go version | cut -d' ' -f3), node $(node --version 2>/dev/null || echo none)."
	echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION IDLE_CONNS=$IDLE_CONNS bench/run.sh\` ($(($(date +%s) - start)) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))."
	echo
	"$work/report" -libs "${cols[*]}" <"$raw"
	if [ -n "$micro" ]; then
		echo
		echo "Microbenchmarks (\`go test -bench . -benchmem ./internal/micro\`, in memory, no sockets):"
		echo
		echo '```'
		echo "$micro"
		echo '```'
	fi
} | tee results/latest.md
