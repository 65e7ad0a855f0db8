#!/usr/bin/env bash
# The README's first command: install what is needed, build leakbench and the
# example chat hub, and run the demo scenario against the leaky hub.
# Exit code 1 means leakbench found the leak it was shown.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/install
cargo build --release --quiet
bash tests/targets/build.sh
set +e
target/release/leakbench run scenarios/chat-hub.toml --out target/demo-report
code=$?
set -e
echo
echo "leakbench exited with $code (0 pass, 1 leak, 2 error, 3 inconclusive)."
echo "Report and profiles: target/demo-report/ (report.json, summary.md, junit.xml, *.pb.gz)"
echo "The fixed hub passes: target/release/leakbench run scenarios/chat-hub-fixed.toml"
exit "$code"
