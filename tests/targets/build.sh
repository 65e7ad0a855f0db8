#!/bin/sh
# Builds every Go test target (tests/targets/*/main.go) and example service
# (scenarios/*/main.go) into OUTDIR/<name>, default <repo>/target/go.
#
# Go is used in GOPATH mode against Debian's packaged libraries (there is no
# module proxy on these machines). Safe to run concurrently: builds are
# serialised with flock, and each binary is written to a temporary name and
# renamed into place, so a reader never sees a half-written file.
set -eu

repo=$(cd "$(dirname "$0")/../.." && pwd)
outdir=${1:-"$repo/target/go"}

# Go 1.23 (bookworm-backports) when present: before Go 1.20 the runtime
# ignores GODEBUG=memprofilerate (golang/go#55100), which leakbench sets on
# targets it starts. Debian's default Go builds them too, with coarser heap
# profiles. GO overrides the choice.
if [ -z "${GO:-}" ]; then
	if [ -x /usr/lib/go-1.23/bin/go ]; then
		GO=/usr/lib/go-1.23/bin/go
	else
		GO=go
	fi
fi
if ! command -v "$GO" >/dev/null 2>&1; then
	echo "build.sh: the Go toolchain ($GO) is not on PATH;" \
		"install it with: apt-get install -y golang-go golang-github-gorilla-websocket-dev" >&2
	exit 2
fi
if ! command -v flock >/dev/null 2>&1; then
	echo "build.sh: flock is missing; install it with: apt-get install -y util-linux" >&2
	exit 2
fi
if [ ! -d /usr/share/gocode/src/github.com/gorilla/websocket ]; then
	echo "build.sh: gorilla/websocket is missing from /usr/share/gocode;" \
		"install it with: apt-get install -y golang-github-gorilla-websocket-dev" >&2
	exit 2
fi

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# One builder at a time per output folder; others wait, then find the
# binaries up to date and return quickly.
exec 9>"$outdir/.build.lock"
flock 9

export GO111MODULE=off
export GOPATH=/usr/share/gocode
export GOFLAGS=
# Keep Go's build cache out of $HOME, which may be read-only in CI.
export GOCACHE="${GOCACHE:-$repo/target/go-cache}"

# Binaries from another Go version are rebuilt.
version=$("$GO" version)
if [ "$(cat "$outdir/.go-version" 2>/dev/null)" != "$version" ]; then
	rm -f "$outdir"/*.tmp
	find "$outdir" -maxdepth 1 -type f -perm -u+x -delete
	echo "$version" > "$outdir/.go-version"
fi

# Targets with a GOEXPERIMENT file (its first line names the experiment)
# need Go 1.26, where the goroutineleak profile is an experiment; without it
# they are skipped with a note and their tests say what to install.
GO126=${GO126:-/usr/lib/go-1.26/bin/go}

status=0
for main in "$repo"/tests/targets/*/main.go "$repo"/scenarios/*/main.go; do
	[ -f "$main" ] || continue
	dir=$(dirname "$main")
	name=$(basename "$dir")
	bin="$outdir/$name"
	# Skip the build when the binary is newer than every source in its folder.
	if [ -x "$bin" ] && [ -z "$(find "$dir" -name '*.go' -newer "$bin" | head -1)" ]; then
		continue
	fi
	go=$GO
	experiment=
	if [ -f "$dir/GOEXPERIMENT" ]; then
		experiment=$(head -n 1 "$dir/GOEXPERIMENT")
		if [ ! -x "$GO126" ]; then
			echo "build.sh: skipping $name: it needs Go 1.26 ($GO126) for" \
				"GOEXPERIMENT=$experiment; .ci/install installs it" >&2
			continue
		fi
		go=$GO126
	fi
	if (cd "$dir" && GOEXPERIMENT=$experiment "$go" build -o "$bin.tmp" .); then
		mv -f "$bin.tmp" "$bin"
	else
		rm -f "$bin.tmp"
		echo "build.sh: building $dir failed" >&2
		status=1
	fi
done
exit $status
