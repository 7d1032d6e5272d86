#!/usr/bin/env bash
# Cross-library comparison (issue 7): every echo server in cmd/echoserver
# plus npm ws (node/), driven by one load client (cmd/loadclient) that
# checks every echoed byte and length. Servers on core 0, client on core 1
# (taskset).
# Each throughput cell starts a fresh server process per library, all at
# once, and the client takes them in turns: ROUNDS rounds of DURATION per
# server, the order rotating by one each round. Each idle-memory cell runs
# a fresh server per library and round, one after the other.
# Prints a markdown table (medians, min–max, ratios, targets) and writes it
# to results/latest.md; raw runs go to results/latest.tsv.
#
#   bench/run.sh                 default: 10 rounds of 250 ms (~6 min)
#   QUICK=1 bench/run.sh         a few seconds: 2 rounds, short turns
#   ROUNDS=20 LIBS="wsrpc gws tcp" CELLS="rr-64-1k idle" bench/run.sh
#   LIBS="wsrpc gws tcp-twin tcp tcp-uring" CELLS="rr-64-16 rr-64-1k" MICRO=0 bench/run.sh
#
# tcp-twin is a second raw TCP server, identical to tcp, run in the
# request/response cells only: what the two measure differently in one run
# is the machine's noise (an A/A test), the yardstick for every other
# difference in those rows. It sits half a round away from tcp.
set -euo pipefail
cd "$(dirname "$0")"

if [ "${QUICK:-0}" = 1 ]; then
	ROUNDS=${ROUNDS:-2}
	DURATION=${DURATION:-100ms}
	WARMUP=${WARMUP:-50ms}
	IDLE_ROUNDS=${IDLE_ROUNDS:-1}
	IDLE_CONNS=${IDLE_CONNS:-500}
	IDLE_SETTLE=${IDLE_SETTLE:-200ms}
	CELLS=${CELLS:-"rr-64-1k pipe-64-1k deflate-64-1k idle-handoff"}
	MICRO=${MICRO:-0}
fi
# The machine's speed moves by ±15% from one quarter second to the next
# and drifts over seconds: many short turns, interleaved, give medians
# that move less than a few long runs one after the other (the A/A row
# shows what is left). Short enough that make bench (engine
# microbenchmarks, ~2 min, then this) stays under 10 minutes.
ROUNDS=${ROUNDS:-10}
DURATION=${DURATION:-250ms}
WARMUP=${WARMUP:-200ms} # a server's first turn, before measuring
SETTLE=${SETTLE:-50ms}  # its later turns
IDLE_ROUNDS=${IDLE_ROUNDS:-3}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_SETTLE=${IDLE_SETTLE:-500ms}
MICRO=${MICRO:-1}
DEFAULT_LIBS="wsrpc wsrpc-busy wsrpc-loop gorilla tcp-twin coder gws gobwas ws tcp" # tcp-uring and wsrpc-nolinger on request
DEFAULT_CELLS="rr-1-16 rr-1-1k rr-1-64k rr-64-16 rr-64-1k rr-64-64k pipe-64-1k deflate-64-1k idle idle-handoff"
LIBS=${LIBS:-$DEFAULT_LIBS}
CELLS=${CELLS:-$DEFAULT_CELLS}

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

# Every cell is checked before anything runs: cell_args fails inside the
# $(…) of a here-string without stopping the script (set -e does not see
# it), so a misspelt cell was measured as a 1-connection 16 B echo under
# its own name, which the report knows nothing of.
for c in $CELLS; do
	cell_args "$c" >/dev/null || exit 2
done

work=$(mktemp -d)
server_pids=() # every server running now
# Defined before the trap that calls it: a failed build exits through it.
stop_servers() {
	local pid
	for pid in "${server_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	server_pids=()
}

cleanup() {
	stop_servers
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

start_server() { # lib deflate handoff -> sets server_pid, server_addr
	local lib=$1 deflate=$2 handoff=$3 out="$work/server.$1.out"
	: >"$out"
	if [ "$lib" = ws ]; then
		local flag=()
		[ "$deflate" = yes ] && flag=(--deflate)
		"${srv_pin[@]}" node node/echoserver.js "${flag[@]}" >"$out" 2>"$work/server.$lib.err" &
	else
		"${srv_pin[@]}" "$work/echoserver" -lib "${lib%-twin}" -deflate="$([ "$deflate" = yes ] && echo true || echo false)" \
			-handoff="$([ "$handoff" = yes ] && echo true || echo false)" >"$out" 2>"$work/server.$lib.err" &
	fi
	server_pid=$!
	server_pids+=("$server_pid")
	for _ in $(seq 100); do
		if grep -q '^ready' "$out"; then
			server_addr=$(sed -n 's/^ready .*addr=\([^ ]*\).*/\1/p' "$out")
			return 0
		fi
		sleep 0.05
	done
	echo "server $lib did not start: $(cat "$work/server.$lib.err")" >&2
	return 1
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

# record cell lib round line: one TSV row from a result line.
record() {
	local c=$1 lib=$2 round=$3 line=$4 val wire tk cpu user
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
}

# cell_libs cell deflate: the libraries that run in the cell, in run order.
cell_libs() {
	local lib
	for lib in "${libs[@]}"; do
		supports "$lib" "$2" || continue
		[[ $lib == tcp-twin && $1 != rr-* ]] && continue
		echo "$lib"
	done
}

# run_turns cell deflate handoff args: every library's server at once, fresh
# for this cell, and one load client that takes them in turns for ROUNDS
# rounds (load.Interleave). The machine's speed drifts over seconds; turns
# of DURATION spread every server's samples over the same stretch of time.
run_turns() {
	local c=$1 deflate=$2 handoff=$3 args=$4 attempt lib line round out status
	local -a cl servers
	mapfile -t cl < <(cell_libs "$c" "$deflate")
	for attempt in 1 2; do # one retry: a timeout on an overloaded machine is not a verdict
		servers=()
		for lib in "${cl[@]}"; do
			start_server "$lib" "$deflate" "$handoff"
			local s="$lib=$server_addr,pid=$server_pid"
			[[ $lib == tcp* ]] && s+=",tcp"
			servers+=(-server "$s")
		done
		status=0
		# shellcheck disable=SC2086
		out=$("${cli_pin[@]}" "$work/loadclient" $args -rounds "$ROUNDS" -warmup "$WARMUP" -settle "$SETTLE" \
			-duration "$DURATION" "${servers[@]}" 2>&1) || status=$?
		if ((status == 0)); then
			stop_servers
			while read -r line; do
				[[ $line == result* ]] || continue
				lib=$(sed -n 's/.*server=\([^ ]*\).*/\1/p' <<<"$line")
				round=$(sed -n 's/.*round=\([^ ]*\).*/\1/p' <<<"$line")
				record "$c" "$lib" "$round" "$line"
				echo "  $c $line" >&2
			done <<<"$out"
			return 0
		fi
		stop_servers
		# Status 3 is a verification failure (a wrong byte, length or
		# opcode; see cmd/loadclient): a verdict, never retried.
		if ((status == 3 || attempt == 2)); then
			break
		fi
		echo "  retrying $c after: $out" >&2
	done
	echo "FAIL $c: $out" >&2
	exit 1
}

# run_idle cell handoff args: memory per idle connection, a fresh server per
# library and round (RSS is the whole process's).
run_idle() {
	local c=$1 handoff=$2 args=$3 round k lib line extra
	for ((round = 0; round < IDLE_ROUNDS; round++)); do
		for ((k = 0; k < n; k++)); do
			lib=${libs[$(((k + round) % n))]}
			[ "$lib" = tcp-twin ] && continue
			start_server "$lib" no "$handoff"
			extra=(-pid "$server_pid")
			[[ $lib == tcp* ]] && extra+=(-tcp)
			# shellcheck disable=SC2086
			if ! line=$("${cli_pin[@]}" "$work/loadclient" -addr "$server_addr" $args -duration "$IDLE_SETTLE" "${extra[@]}" 2>&1); then
				echo "FAIL $c $lib: $line" >&2
				exit 1
			fi
			stop_servers
			record "$c" "$lib" "$round" "$line"
			echo "  $c $lib: $line" >&2
		done
	done
}

for c in $CELLS; do
	echo "$c (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	read -r deflate handoff args <<<"$(cell_args "$c")"
	if [[ $c == idle* ]]; then
		run_idle "$c" "$handoff" "$args"
	else
		run_turns "$c" "$deflate" "$handoff" "$args"
	fi
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
	# The selection, where it is not the default, so the line reruns it.
	sel=
	[ "$LIBS" = "$DEFAULT_LIBS" ] || sel+="LIBS=\"$LIBS\" "
	[ "$CELLS" = "$DEFAULT_CELLS" ] || sel+="CELLS=\"$CELLS\" "
	[ "$MICRO" = 1 ] || sel+="MICRO=$MICRO "
	echo "Command: \`${sel}ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP SETTLE=$SETTLE IDLE_ROUNDS=$IDLE_ROUNDS IDLE_CONNS=$IDLE_CONNS bench/run.sh\` ($(($(date +%s) - start)) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))."
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
