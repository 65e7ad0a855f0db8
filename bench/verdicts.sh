#!/usr/bin/env bash
# leakbench's verdict benchmark: how often each test target gets the verdict
# it should, and how long a verdict takes, at DEFAULT settings (a scenario
# names only the target, `sessions` and, for websockets, an echo step).
#
#   bash bench/verdicts.sh              # RUNS=10 per target, about 70 minutes
#   RUNS=1 bash bench/verdicts.sh       # smoke run, about 7 minutes
#   ONLY='^benchsrv$' RUNS=8 bash bench/verdicts.sh
#
# Targets: every Go test target of tests/targets/ that has a verdict (leaky
# ones, their fixed twins and the traps of ../shared/LEAKS.md, including
# ring and quarterleak), plus the third-party nats-server (300 websocket
# sessions, the NATS handshake) and caddy (200 HTTP requests) from Debian.
# The expected verdict of each is data, in TARGETS below. Each target runs
# RUNS times; the runs alternate between a quiet machine and one with a CPU
# hog (`yes > /dev/null`) pinned to one core, so half of them (RUNS/2,
# rounded down) compete for a core. Runs are one at a time.
#
# It prints one line per run to stderr and a table to stdout: target,
# expected verdict, runs, verdicts seen (pass / leak / inconclusive /
# error), false leaks (a leak verdict on a target that does not leak),
# missed leaks (anything but leak on one that does) and the worst and median
# wall time of a run (start of `leakbench run` to its exit, target start and
# stop included). Not a test: it exits 0 whatever the verdicts.
#
# Loopback only. Scenarios and reports go to a temporary folder deleted on
# exit; the hog and a running leakbench (which stops its own target) are
# stopped on every exit path. Every run is bounded by RUN_DEADLINE.
#
# Knobs (environment): RUNS (default 10), ONLY (extended regex on target
# labels), RUN_DEADLINE (seconds per run, default 600), KEEP (a folder to
# copy each run's summary and the per-run table runs.tsv into), HOG
# (`alternate`, the default, or `never` for a quiet machine throughout).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
RUNS=${RUNS:-10}
ONLY=${ONLY:-}
RUN_DEADLINE=${RUN_DEADLINE:-600}
KEEP=${KEEP:-}
HOG=${HOG:-alternate}
case $HOG in alternate | never) ;; *) echo "HOG must be alternate or never, got '$HOG'" >&2; exit 2 ;; esac
case $RUNS in '' | *[!0-9]* | 0) echo "RUNS must be a whole number of at least 1, got '$RUNS'" >&2; exit 2 ;; esac
case $RUN_DEADLINE in '' | *[!0-9]* | 0) echo "RUN_DEADLINE must be a whole number of seconds, got '$RUN_DEADLINE'" >&2; exit 2 ;; esac

# ---- what runs and what it should get ---------------------------------------
# label | expected verdict | program (a tests/targets binary, or nats-server,
# caddy) | scheme:path of the session endpoint | options: target arguments,
# and close=MODE, env:NAME=VALUE, expvar (read /debug/vars, no pprof).
# Leaks and fixed twins as tests/e2e.rs, lifecycle.rs and goroutineleak.rs
# judge them; traps (LEAKS.md, "things that look like leaks") must pass.
TARGETS='
chathub                 | leak | chathub     | ws:/ws                       |
chathub-fixed           | pass | chathub     | ws:/ws                       | -fixed
sessionmap              | leak | sessionmap  | ws:/ws                       |
sessionmap-fixed        | pass | sessionmap  | ws:/ws                       | -fixed
smallleak               | leak | smallleak   | http:/visit                  |
quarterleak             | leak | quarterleak | http:/visit                  |
respbody                | leak | respbody    | http:/fetch                  |
respbody-fixed          | pass | respbody    | http:/fetch                  | -fixed
ctxleak                 | leak | ctxleak     | http:/work                   |
ctxleak-fixed           | pass | ctxleak     | http:/work                   | -fixed
fdleak                  | leak | fdleak      | http:/open                   |
fdleak-fixed            | pass | fdleak      | http:/open                   | -fixed
fanout                  | leak | fanout      | http:/lookup?key=k{{session}} |
fanout-fixed            | pass | fanout      | http:/lookup?key=k{{session}} | -fixed
abruptonly-graceful     | pass | abruptonly  | ws:/ws                       | close=graceful
abruptonly-abrupt       | leak | abruptonly  | ws:/ws                       | close=abrupt
abruptonly-fixed-abrupt | pass | abruptonly  | ws:/ws                       | -fixed close=abrupt
benchsrv                | pass | benchsrv    | ws:/ws                       |
expvaronly              | pass | expvaronly  | http:/visit                  | expvar
cache                   | pass | cache       | ws:/ws                       |
ring                    | pass | ring        | ws:/ws                       |
pool                    | pass | pool        | http:/render                 |
pool-gogc-off           | pass | pool        | http:/render                 | env:GOGC=off
deferred                | pass | deferred    | ws:/ws                       |
deferred-12s            | pass | deferred    | ws:/ws                       | -delay 12s
nats-server             | pass | nats-server | ws:/                         |
caddy                   | pass | caddy       | http:/hello                  |
'

say() { printf '== %s\n' "$*" >&2; }

# ---- cleanup on every exit path ---------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/leakbench-verdicts.XXXXXX")
hog_pid=
lb_pid=
stop_hog() {
	if [ -n "$hog_pid" ]; then
		kill "$hog_pid" 2>/dev/null || true
		wait "$hog_pid" 2>/dev/null || true
		hog_pid=
	fi
}
cleanup() {
	stop_hog
	if [ -n "$lb_pid" ] && kill -0 "$lb_pid" 2>/dev/null; then
		# SIGTERM: leakbench stops its target and exits; bounded wait.
		kill -TERM "$lb_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$lb_pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$lb_pid" 2>/dev/null || true
		wait "$lb_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- tools ---------------------------------------------------------------
for tool in python3 timeout; do
	command -v "$tool" >/dev/null 2>&1 || { echo "verdicts.sh needs $tool" >&2; exit 2; }
done
say "building leakbench (release) and the Go targets"
cargo build --release --quiet
sh tests/targets/build.sh
LB="$repo/target/release/leakbench"
GOBIN="$repo/target/go"

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Writes the scenario of one target into folder $1 (scenario.toml, plus the
# service's config file for the third-party ones). $2 program, $3
# scheme:path, $4 options. Returns 1 (and says why) if the program is missing.
write_scenario() {
	local dir=$1 program=$2 endpoint=$3 options=$4
	local scheme=${endpoint%%:*} path=${endpoint#*:}
	local port argv="" close="" env="" expvar=0 opt
	mkdir -p "$dir"
	case $program in
	nats-server)
		command -v nats-server >/dev/null 2>&1 || { say "skipping: nats-server is not installed (bash .ci/install)"; return 1; }
		local client prof
		client=$(free_port) prof=$(free_port) port=$(free_port)
		sed -e "s/{{CLIENT_PORT}}/$client/g" -e "s/{{PROF_PORT}}/$prof/g" -e "s/{{WS_PORT}}/$port/g" \
			tests/thirdparty/nats-ws.conf >"$dir/nats.conf"
		# The NATS greeting, handshake and round trip, as tests/thirdparty.rs.
		cat >"$dir/scenario.toml" <<-TOML
			name = "nats-server websocket"
			[target]
			url = "ws://127.0.0.1:$port$path"
			command = ["nats-server", "-c", "nats.conf"]
			pprof = "http://127.0.0.1:$prof/debug/pprof"
			[load]
			sessions = 300
			[[load.steps]]
			expect = "INFO"
			[[load.steps]]
			send = "CONNECT {\"verbose\":false}\r\nPING\r\n"
			[[load.steps]]
			expect = "PONG"
		TOML
		return 0
		;;
	caddy)
		command -v caddy >/dev/null 2>&1 || { say "skipping: caddy is not installed (bash .ci/install)"; return 1; }
		local admin
		admin=$(free_port) port=$(free_port)
		sed -e "s/{{ADMIN_PORT}}/$admin/g" -e "s/{{HTTP_PORT}}/$port/g" tests/thirdparty/Caddyfile >"$dir/Caddyfile"
		cat >"$dir/scenario.toml" <<-TOML
			name = "caddy http"
			[target]
			url = "http://127.0.0.1:$port$path"
			command = ["caddy", "run", "--config", "Caddyfile", "--adapter", "caddyfile"]
			env = { XDG_DATA_HOME = "$dir/xdg-data", XDG_CONFIG_HOME = "$dir/xdg-config" }
			pprof = "http://127.0.0.1:$admin/debug/pprof"
			[load]
			sessions = 200
		TOML
		return 0
		;;
	esac
	[ -x "$GOBIN/$program" ] || { say "skipping: $GOBIN/$program was not built (see tests/targets/build.sh)"; return 1; }
	port=$(free_port)
	for opt in $options; do
		case $opt in
		close=*) close=${opt#close=} ;;
		env:*) env="${env:+$env, }${opt#env:}" ;;
		expvar) expvar=1 ;;
		*) argv="$argv, \"$opt\"" ;;
		esac
	done
	env=$(printf '%s' "$env" | sed -E 's/([A-Za-z_][A-Za-z0-9_]*)=([^,]*)/\1 = "\2"/g')
	{
		echo "name = \"$program${options:+ $options}\""
		echo "[target]"
		echo "url = \"$scheme://127.0.0.1:$port$path\""
		echo "command = [\"$GOBIN/$program\", \"-addr\", \"127.0.0.1:$port\"$argv]"
		[ -z "$env" ] || echo "env = { $env }"
		[ "$expvar" = 0 ] || echo "expvar = \"http://127.0.0.1:$port/debug/vars\""
		echo "[load]"
		echo "sessions = 200"
		[ -z "$close" ] || echo "close = \"$close\""
		if [ "$scheme" = ws ]; then
			printf '[[load.steps]]\nsend = "hello"\n[[load.steps]]\nexpect = "hello"\n'
		fi
	} >"$dir/scenario.toml"
}

# $1 without leading and trailing blanks.
trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	s=${s%"${s##*[![:space:]]}"}
	printf '%s' "$s"
}

# The verdict an exit code stands for.
verdict_of() {
	case $1 in
	0) echo pass ;;
	1) echo leak ;;
	3) echo inconclusive ;;
	*) echo error ;;
	esac
}

# ---- the runs --------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
labels=()
while IFS='|' read -r label expected program endpoint options; do
	label=$(trim "$label")
	[ -n "$label" ] || continue
	if [ -n "$ONLY" ] && ! [[ $label =~ $ONLY ]]; then
		continue
	fi
	labels+=("$label|$(trim "$expected")|$(trim "$program")|$(trim "$endpoint")|$(trim "$options")")
done <<<"$TARGETS"
[ ${#labels[@]} -gt 0 ] || { echo "no target matches ONLY='$ONLY'" >&2; exit 2; }

runs_tsv="$work/runs.tsv"
printf 'target\texpected\trun\thog\texit\tverdict\twall_s\n' >"$runs_tsv"
hog_runs=$((RUNS / 2))
[ "$HOG" = alternate ] || hog_runs=0
total=$((RUNS * ${#labels[@]}))
n=0
bench_start=$(date +%s)
for run in $(seq 1 "$RUNS"); do
	# Even runs compete with a CPU hog on core 0 (any core if taskset is
	# missing); odd runs have the machine to themselves.
	hog=no
	if [ "$HOG" = alternate ] && [ $((run % 2)) = 0 ]; then
		hog=yes
		if command -v taskset >/dev/null 2>&1; then
			taskset -c 0 yes >/dev/null &
		else
			yes >/dev/null &
		fi
		hog_pid=$!
	fi
	for entry in "${labels[@]}"; do
		IFS='|' read -r label expected program endpoint options <<<"$entry"
		n=$((n + 1))
		dir="$work/$label-$run"
		if ! write_scenario "$dir" "$program" "$endpoint" "$options"; then
			printf '%s\t%s\t%s\t%s\t-\tskipped\t-\n' "$label" "$expected" "$run" "$hog" >>"$runs_tsv"
			continue
		fi
		t0=$(date +%s%N)
		timeout -s TERM -k 30 "$RUN_DEADLINE" "$LB" run --out "$dir/out" "$dir/scenario.toml" \
			>"$dir/stdout" 2>"$dir/stderr" </dev/null &
		lb_pid=$!
		code=0
		wait "$lb_pid" || code=$?
		lb_pid=
		t1=$(date +%s%N)
		wall=$(python3 -c "print('%.1f' % (($t1 - $t0) / 1e9))")
		verdict=$(verdict_of "$code")
		[ "$code" != 124 ] || verdict="error (deadline)"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$expected" "$run" "$hog" "$code" "$verdict" "$wall" >>"$runs_tsv"
		say "[$n/$total] $label run $run$([ $hog = yes ] && echo ' (hog)'): $verdict, exit $code, $wall s (expected $expected)"
		if [ "$verdict" = error ] || [ "$verdict" = "error (deadline)" ]; then
			tail -n 3 "$dir/stderr" | sed 's/^/     /' >&2
		fi
		if [ -n "$KEEP" ]; then
			mkdir -p "$KEEP"
			cp "$dir/stdout" "$KEEP/$label-$run.txt" 2>/dev/null || true
		fi
		rm -rf "$dir"
	done
	stop_hog
done
bench_s=$(($(date +%s) - bench_start))
[ -z "$KEEP" ] || cp "$runs_tsv" "$KEEP/runs.tsv"

# ---- table -------------------------------------------------------------------
echo
echo "verdict benchmark: $(date -u +%Y-%m-%d), leakbench $("$LB" --version 2>/dev/null | awk '{print $NF}'), $(nproc) cores, $(uname -sr)"
echo "default settings; $RUNS run(s) per target, $hog_runs of them with a CPU hog on one core; took ${bench_s} s"
echo
python3 - "$runs_tsv" <<'PY'
import csv, statistics, sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
order, by = [], {}
for r in rows:
    if r["target"] not in by:
        order.append(r["target"])
        by[r["target"]] = []
    by[r["target"]].append(r)

head = ("target", "expected", "runs", "pass", "leak", "inconc.", "error", "false leaks", "missed", "worst s", "median s")
lines = []
false_total = missed_total = 0
for t in order:
    done = [r for r in by[t] if r["verdict"] != "skipped"]
    expected = by[t][0]["expected"]
    if not done:
        lines.append((t, expected, "0", "-", "-", "-", "-", "-", "-", "skipped", ""))
        continue
    count = lambda v: sum(1 for r in done if r["verdict"].startswith(v))
    leaks = [r for r in done if r["verdict"] == "leak"]
    false = len(leaks) if expected != "leak" else 0
    false_hog = sum(1 for r in leaks if r["hog"] == "yes") if expected != "leak" else 0
    missed = sum(1 for r in done if r["verdict"] != "leak") if expected == "leak" else 0
    false_total += false
    missed_total += missed
    walls = [float(r["wall_s"]) for r in done]
    lines.append((
        t, expected, str(len(done)),
        str(count("pass")), str(count("leak")), str(count("inconclusive")), str(count("error")),
        f"{false} ({false_hog} hog)" if false else "0",
        str(missed) if expected == "leak" else "-",
        f"{max(walls):.1f}", f"{statistics.median(walls):.1f}",
    ))
widths = [max(len(row[i]) for row in [head] + lines) for i in range(len(head))]
def show(row):
    cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
    cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:])]
    print("  ".join(cells).rstrip())
show(head)
for row in lines:
    show(row)
print()
print(f"false leaks (clean targets and traps): {false_total}; missed leaks: {missed_total}")
PY
