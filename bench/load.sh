#!/bin/sh
# leakbench's load benchmark: one command from a fresh checkout (as root on
# Debian, for apt-get):
#
#   sh bench/load.sh
#
# Against one fixed Go target (tests/targets/benchsrv, built from the test
# sources) on loopback, in the same run, it measures:
#   1. HTTP keep-alive throughput, 64 connections: leakbench (64 sessions,
#      many requests each) vs `wrk -c 64` vs `oha -c 64`, requests/s and ratios;
#   2. websocket session rate: connect + one echo + close handshake, per second;
#   3. peak concurrent idle websocket sessions held, and leakbench's RSS per
#      session at that peak.
# It installs what it needs: Go and gorilla/websocket and wrk from Debian,
# oha with `cargo install oha`. Not a test: it prints a table and exits 0.
#
# Knobs (environment): DURATION (wrk/oha seconds, default 10),
# REQUESTS (per leakbench HTTP session, default 4000), WS_SESSIONS (default
# 20000), IDLE_SESSIONS (default 19000), PORT (default 18480).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
DURATION=${DURATION:-10}
REQUESTS=${REQUESTS:-4000}
WS_SESSIONS=${WS_SESSIONS:-20000}
IDLE_SESSIONS=${IDLE_SESSIONS:-19000}
PORT=${PORT:-18480}
work=$(mktemp -d)
srv_pid=
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

say() { printf '== %s\n' "$*" >&2; }

# ---- tools -------------------------------------------------------------
need_apt=
command -v go >/dev/null 2>&1 || need_apt="$need_apt golang-go"
[ -d /usr/share/gocode/src/github.com/gorilla/websocket ] || need_apt="$need_apt golang-github-gorilla-websocket-dev"
command -v wrk >/dev/null 2>&1 || need_apt="$need_apt wrk"
command -v python3 >/dev/null 2>&1 || need_apt="$need_apt python3"
if [ -n "$need_apt" ]; then
	say "installing from Debian:$need_apt"
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $need_apt >/dev/null
fi
PATH="$HOME/.cargo/bin:$PATH"
if ! command -v oha >/dev/null 2>&1; then
	say "installing oha (cargo install oha, a few minutes)"
	cargo install --locked oha >/dev/null 2>&1 || cargo install oha
fi
say "building leakbench (release) and the Go targets"
cargo build --release --quiet
sh tests/targets/build.sh
LB="$repo/target/release/leakbench"
SRV="$repo/target/go/benchsrv"

# leakbench raises its own soft limit; wrk and oha get the hard limit too.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- the target, shared by every measurement ------------------------------
"$SRV" -addr "127.0.0.1:$PORT" >"$work/benchsrv.log" 2>&1 &
srv_pid=$!
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "benchsrv did not start" >&2; exit 2; }
	sleep 0.1
done
URL="http://127.0.0.1:$PORT"

# Runs leakbench on scenario text ($1 = name); the report lands in $work/$1.
lb() {
	name=$1
	cat >"$work/$name.toml"
	"$LB" run --quiet --out "$work/$name" "$work/$name.toml" >"$work/$name.out" 2>"$work/$name.err" || true
	[ -f "$work/$name/report.json" ] || { echo "leakbench $name wrote no report:" >&2; cat "$work/$name.err" >&2; exit 2; }
}

# Best measured cycle of a leakbench report: "$1" is a Python expression
# over `l` (one cycle's load) giving the figure.
best() {
	python3 - "$work/$1/report.json" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
vals = [eval(sys.argv[2], {}, {"l": p["load"]}) for p in r["phases"] if p["kind"] == "cycle"]
print(f"{max(vals):.0f}")
PY
}

# ---- 1. HTTP keep-alive throughput ----------------------------------------
say "HTTP: wrk -t2 -c64 -d${DURATION}s"
wrk -t2 -c64 -d"${DURATION}s" "$URL/hello" >"$work/wrk.txt"
wrk_rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$work/wrk.txt")

say "HTTP: oha -c 64 -z ${DURATION}s"
oha -c 64 -z "${DURATION}s" --no-tui --output-format json "$URL/hello" >"$work/oha.json" 2>/dev/null ||
	oha -c 64 -z "${DURATION}s" --no-tui -j "$URL/hello" >"$work/oha.json"
oha_rps=$(python3 -c "import json,sys; print('%.0f' % json.load(open(sys.argv[1]))['summary']['requestsPerSec'])" "$work/oha.json")

say "HTTP: leakbench, 64 sessions x $REQUESTS requests, 2 cycles"
lb http <<TOML
[target]
url = "$URL/hello"
[load]
sessions = 64
concurrency = 64
requests = $REQUESTS
warmup = 0
cycles = 2
[settle]
timeout = "5s"
TOML
lb_rps=$(best http 'l["request"]["count"] / l["elapsed_s"]')

# ---- 2. websocket session rate ---------------------------------------------
say "websocket: $WS_SESSIONS sessions (connect, one echo, close handshake), 64 at once"
lb wsrate <<TOML
[target]
url = "ws://127.0.0.1:$PORT/ws"
[load]
sessions = $WS_SESSIONS
concurrency = 64
warmup = 0
cycles = 2
[[load.steps]]
send = "hello {{session}}"
[[load.steps]]
expect = "hello"
[settle]
timeout = "5s"
TOML
ws_rate=$(best wsrate 'l["completed"] / l["elapsed_s"]')

# ---- 3. peak idle websocket sessions and client RSS -------------------------
say "websocket: $IDLE_SESSIONS idle sessions held at once"
cat >"$work/idle.toml" <<TOML
[target]
url = "ws://127.0.0.1:$PORT/ws"
[load]
sessions = $IDLE_SESSIONS
concurrency = $IDLE_SESSIONS
warmup = 0
cycles = 2
hold = "8s"
step_timeout = "30s"
[settle]
timeout = "10s"
TOML
"$LB" run --out "$work/idle" "$work/idle.toml" >"$work/idle.out" 2>"$work/idle.err" &
lb_pid=$!
# RSS before any session (sampled once the baseline line is out), and the
# peak while sessions are held. Polling is bounded by the process's life.
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$lb_pid/status" 2>/dev/null || echo 0; }
before=0
peak=0
while kill -0 "$lb_pid" 2>/dev/null; do
	if [ "$before" = 0 ] && grep -q "baseline:" "$work/idle.err" 2>/dev/null; then
		before=$(rss)
	fi
	now=$(rss)
	[ "${now:-0}" -gt "$peak" ] && peak=$now
	sleep 0.2
done
wait "$lb_pid" || true
held=$(best idle 'l["completed"]')
failed=$(best idle 'l["failed"]')
per_session=$(python3 -c "print('%.1f' % (($peak - $before) / $held))")

# ---- table --------------------------------------------------------------
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), open files $(ulimit -Hn)"
echo
printf '%-46s %14s\n' "measurement" "result"
printf '%-46s %14s\n' "HTTP keep-alive, 64 conns: wrk req/s" "$wrk_rps"
printf '%-46s %14s\n' "HTTP keep-alive, 64 conns: oha req/s" "$oha_rps"
printf '%-46s %14s\n' "HTTP keep-alive, 64 conns: leakbench req/s" "$lb_rps"
printf '%-46s %14s\n' "  leakbench / wrk" "$(ratio "$lb_rps" "$wrk_rps")"
printf '%-46s %14s\n' "  leakbench / oha" "$(ratio "$lb_rps" "$oha_rps")"
printf '%-46s %14s\n' "ws sessions/s (connect+echo+close, 64 at once)" "$ws_rate"
printf '%-46s %14s\n' "idle ws sessions held at once" "$held (failed $failed)"
printf '%-46s %14s\n' "leakbench RSS at peak / before" "${peak} / ${before} KiB"
printf '%-46s %14s\n' "leakbench RSS per idle ws session" "$per_session KiB"
