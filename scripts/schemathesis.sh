#!/usr/bin/env bash
# Runs schemathesis (installed by scripts/setup.sh into .vctts/schemathesis)
# against a live standalone server built from this checkout: the OpenAPI
# document's every operation, examples and fuzzing, a fixed seed and a
# bounded number of cases, every check on except the exclusions written (with
# their reasons) in tests/schemathesis.toml. The rate limiter is lifted for
# the run. Exits non-zero on any failure; the report lands in
# target/schemathesis/.
#
#   scripts/schemathesis.sh [--max-examples N]
set -euo pipefail
cd "$(dirname "$0")/.."

max_examples=20
while [ $# -gt 0 ]; do
    case "$1" in
        --max-examples) max_examples="$2"; shift 2 ;;
        *) echo "usage: $0 [--max-examples N]" >&2; exit 2 ;;
    esac
done

st=.vctts/schemathesis/bin/schemathesis
if [ ! -x "$st" ]; then
    echo "schemathesis is not installed: run scripts/setup.sh" >&2
    exit 1
fi
cargo build -q --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/debug/vctts-server"

work=target/schemathesis
rm -rf "$work" && mkdir -p "$work"
cat > "$work/gateway.yaml" <<'YAML'
limiter: { enabled: false }
YAML
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" standalone --config "$work/gateway.yaml" --host 127.0.0.1 --port "$port" \
    --models models --data "$work/data" > "$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

base="http://127.0.0.1:$port"
ready=0
for _ in $(seq 1 240); do
    if ! kill -0 "$server" 2>/dev/null; then
        echo "the server exited; its log:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    if curl -sf "$base/api/v3/health" > /dev/null; then ready=1; break; fi
    sleep 0.25
done
[ "$ready" -eq 1 ] || { echo "the server did not become ready; its log:" >&2; cat "$work/server.log" >&2; exit 1; }

"$st" --config-file tests/schemathesis.toml --no-color run "$base/api/v3/openapi.json" \
    --phases examples,fuzzing \
    --max-examples "$max_examples" \
    --seed 20261206 \
    --workers 1 \
    --request-timeout 120 \
    --report junit --report-dir "$work"
