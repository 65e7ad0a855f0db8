#!/bin/sh
# The fleet's coordination overhead: websocket sessions per second
# (connect + one echo + close handshake) from one plain `leakbench run`
# beside a coordinator with 1, 2 and 3 local `leakbench agent`s, at equal
# total sessions and concurrency, against one target (tests/targets/benchsrv)
# on loopback. One command from a fresh checkout (as root on Debian, for
# apt-get):
#
#   sh bench/fleet.sh
#
# The configurations run in interleaved rounds (ROUNDS, default 3) so that
# drift on a shared machine falls on all of them alike. Each run's figure is
# its best measured cycle: load.completed / load.elapsed_s from report.json,
# where a fleet cycle's time runs from the coordinator's `go` to the last
# agent's report, so the barriers are inside it. Not a test: it prints a
# table and exits 0.
#
# Knobs (environment): SESSIONS per cycle (default 20000), CONCURRENCY
# (default 64), ROUNDS (default 3), PORT (default 18490).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
SESSIONS=${SESSIONS:-20000}
CONCURRENCY=${CONCURRENCY:-64}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18490}
CONTROL=$((PORT + 1))
work=$(mktemp -d)
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

say() { printf '== %s\n' "$*" >&2; }

need_apt=
command -v go >/dev/null 2>&1 || need_apt="$need_apt golang-go"
[ -d /usr/share/gocode/src/github.com/gorilla/websocket ] || need_apt="$need_apt golang-github-gorilla-websocket-dev"
command -v python3 >/dev/null 2>&1 || need_apt="$need_apt python3"
if [ -n "$need_apt" ]; then
	say "installing from Debian:$need_apt"
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $need_apt >/dev/null
fi
say "building leakbench (release) and the Go targets"
cargo build --release --quiet
sh tests/targets/build.sh
LB="$repo/target/release/leakbench"

"$repo/target/go/benchsrv" -addr "127.0.0.1:$PORT" >"$work/benchsrv.log" 2>&1 &
pids="$pids $!"
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "benchsrv did not start" >&2; exit 2; }
	sleep 0.1
done
head -c 24 /dev/urandom | base64 >"$work/token"
cat >"$work/scenario.toml" <<TOML
[target]
url = "ws://127.0.0.1:$PORT/ws"
[load]
sessions = $SESSIONS
concurrency = $CONCURRENCY
warmup = 0
cycles = 3
[[load.steps]]
send = "hello {{session}}"
[[load.steps]]
expect = "hello"
[settle]
timeout = "5s"
[verdict]
escalate = false
TOML

# Best measured cycle's sessions per second of the report in $1.
best() {
	python3 - "$1/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f'{max(p["load"]["completed"] / p["load"]["elapsed_s"] for p in r["phases"] if p["kind"] == "cycle"):.0f}')
PY
}

# One run: $1 = 0 for a plain process, else the number of agents.
run() {
	n=$1
	out="$work/run-$n-$round"
	if [ "$n" = 0 ]; then
		"$LB" run --quiet --out "$out" "$work/scenario.toml" >"$out.log" 2>&1 || true
	else
		"$LB" run --quiet --out "$out" "$work/scenario.toml" --agents "$n" \
			--listen "127.0.0.1:$CONTROL" --token-file "$work/token" >"$out.log" 2>&1 &
		coord=$!
		a=0
		agents=
		while [ $a -lt "$n" ]; do
			"$LB" agent --coordinator "ws://127.0.0.1:$CONTROL" --token-file "$work/token" \
				--index $a >"$out.agent$a.log" 2>&1 &
			agents="$agents $!"
			a=$((a + 1))
		done
		wait "$coord" || true
		for p in $agents; do wait "$p" || true; done
	fi
	[ -f "$out/report.json" ] || { echo "no report from run $n:" >&2; cat "$out.log" >&2; exit 2; }
	best "$out" >>"$work/rates-$n"
}

round=1
while [ $round -le "$ROUNDS" ]; do
	for n in 0 1 2 3; do
		say "round $round/$ROUNDS: $([ $n = 0 ] && echo 'one process' || echo "$n agent(s)")"
		run $n
	done
	round=$((round + 1))
done

median() { sort -n "$1" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
plain=$(median "$work/rates-0")
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $SESSIONS sessions a cycle, $CONCURRENCY at once in all"
echo
printf '%-28s %-26s %8s %10s\n' "configuration" "sessions/s, each round" "median" "vs plain"
for n in 0 1 2 3; do
	name=$([ $n = 0 ] && echo "one process" || echo "coordinator + $n agent(s)")
	m=$(median "$work/rates-$n")
	printf '%-28s %-26s %8s %10s\n' "$name" "$(tr '\n' ' ' <"$work/rates-$n")" "$m" \
		"$(python3 -c "print('%.2f' % ($m / $plain))")"
done
