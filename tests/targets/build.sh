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

if ! command -v go >/dev/null 2>&1; then
	echo "build.sh: the Go toolchain (go) is not on PATH;" \
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
	if (cd "$dir" && go build -o "$bin.tmp" .); then
		mv -f "$bin.tmp" "$bin"
	else
		rm -f "$bin.tmp"
		echo "build.sh: building $dir failed" >&2
		status=1
	fi
done
exit $status
