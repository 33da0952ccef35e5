#!/usr/bin/env bash
# The offline bundle, end to end, on a machine with no network.
#
#   1. scripts/bundle.sh --profile debug builds the bundle (reusing the debug
#      binaries cargo has already built; model parts of 16 MiB so the model
#      travels as several parts);
#   2. inside `unshare -n -m` — a network namespace whose only interface is
#      loopback, and a private mount namespace — the system's espeak-ng
#      (binary, library, data) and this checkout are hidden behind empty bind
#      mounts, so nothing can come from them;
#   3. the tar is extracted and install.sh installs it into a temporary prefix
#      with --espeak extract (espeak-ng from the bundled .debs);
#   4. `vctts-server standalone` is started from the prefix on a loopback port
#      chosen by the OS, a sentence is synthesized over HTTP with the default
#      voice, and the WAV is checked with scripts/check_wav.py;
#   5. the server is stopped with SIGTERM and must exit cleanly.
# Any failing step stops the test with a message and a non-zero status; the
# temporary folder is removed in every case (set KEEP=1 to keep it).
#
# Usage: tests/offline_bundle.sh [--no-build]
#   --no-build   use the debug binaries already in target/debug (no cargo run)
# Needs: root or unprivileged user namespaces (for unshare), iproute2 (ip),
# curl, python3, dpkg-deb, and what scripts/bundle.sh needs.
set -euo pipefail

REPO="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
BUNDLE_ARGS=(--profile debug --part-size 16M --quiet)
for arg in "$@"; do
    case "$arg" in
        --no-build) BUNDLE_ARGS+=(--no-build) ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "offline_bundle: unknown argument '$arg'" >&2
            exit 2
            ;;
    esac
done

fail() {
    echo "offline_bundle: FAILED: $*" >&2
    exit 1
}
step() { printf '\n==> offline_bundle: %s\n' "$*"; }

for tool in unshare ip curl python3 dpkg-deb tar; do
    command -v "$tool" > /dev/null 2>&1 || fail "$tool is required"
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vctts-offline-test.XXXXXX")"
cleanup() {
    local rc=$?
    if [ "${KEEP:-0}" = 1 ]; then
        echo "offline_bundle: kept $WORK"
    else
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT

# ------------------------------------------------------------ the bundle
step "build the bundle (scripts/bundle.sh ${BUNDLE_ARGS[*]})"
started=$SECONDS
TAR="$("$REPO/scripts/bundle.sh" "${BUNDLE_ARGS[@]}" --out "$WORK/out" | tail -n1)" || fail "scripts/bundle.sh failed"
[ -f "$TAR" ] || fail "scripts/bundle.sh did not print the tar it wrote (got '$TAR')"
VERSION="$(basename "$TAR" | sed -n 's/^vctts-offline-\(.*\)-linux-x86_64\.tar$/\1/p')"
[ -n "$VERSION" ] || fail "unexpected bundle name $(basename "$TAR")"
NAME="vctts-offline-$VERSION-linux-x86_64"
echo "built $(basename "$TAR") ($(du -h "$TAR" | cut -f1)) in $((SECONDS - started)) s"

listing="$(tar -tf "$TAR")"
for entry in install.sh SHA256SUMS BUNDLE.txt LICENSE README.md bin/vctts bin/vctts-server \
    lib/libonnxruntime.so.1.32.0 share/systemd/vctts-gateway.service.in \
    share/systemd/vctts-worker@.service.in share/systemd/vctts-standalone.service.in \
    models/openvoice/openvoice.pkg.manifest.json models/openvoice/README.md; do
    grep -qx "$NAME/$entry" <<< "$listing" || fail "the bundle lacks $entry"
done
for pkg in espeak-ng espeak-ng-data libespeak-ng1 libpcaudio0 libsonic0; do
    grep -q "^$NAME/debs/${pkg}_.*\.deb\$" <<< "$listing" || fail "the bundle lacks the $pkg package"
done
parts="$(grep -c "^$NAME/models/openvoice/openvoice\.pkg\.part_" <<< "$listing" || true)"
[ "$parts" -ge 2 ] || fail "the openvoice model should travel as several 16 MiB parts, found $parts"
echo "bundle contents ok: binaries, runtime, $(grep -c "^$NAME/debs/.*\.deb\$" <<< "$listing") .debs, openvoice in $parts parts"

cp -- "$REPO/scripts/check_wav.py" "$WORK/check_wav.py"
mkdir -p "$WORK/empty" "$WORK/x"

# ---------------------------------------------- inside the network namespace
# Runs as root of new network and mount namespaces; its arguments are paths.
inside() {
    set -euo pipefail
    local repo="$1" work="$2" tar="$3" name="$4"
    local prefix="$work/prefix"
    SERVER_PID="" # global: the EXIT trap reads it after this function returns
    fail() {
        echo "offline_bundle: FAILED: $*" >&2
        exit 1
    }
    step() { printf '\n==> offline_bundle: %s\n' "$*"; }
    # shellcheck disable=SC2317 # called by the EXIT trap
    stop_server() {
        if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2> /dev/null; then
            kill -KILL "$SERVER_PID" 2> /dev/null || true
            wait "$SERVER_PID" 2> /dev/null || true
        fi
    }
    trap stop_server EXIT

    step "network namespace: loopback only"
    ip link set lo up || fail "cannot bring up lo"
    local ifaces
    ifaces="$(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); printf "%s ", $2 }')"
    [ "$ifaces" = "lo " ] || fail "expected only lo in the namespace, found: $ifaces"
    if curl --noproxy "*" -sS -m 3 -o /dev/null http://1.1.1.1/ 2> /dev/null; then
        fail "an outside address answered from inside the namespace"
    fi
    echo "interfaces: $ifaces(no route out)"

    step "hide the system's espeak-ng and this checkout"
    # An empty, non-executable regular file takes the place of each binary and library.
    local hidden=() blank="$work/blank"
    : > "$blank"
    chmod 0644 "$blank"
    for f in /usr/bin/espeak-ng /usr/bin/speak-ng; do
        if [ -e "$f" ]; then mount --bind "$blank" "$f" && hidden+=("$f"); fi
    done
    local lib
    for lib in /usr/lib/*/libespeak-ng.so.1 /usr/lib/libespeak-ng.so.1; do
        if [ -e "$lib" ]; then
            lib="$(readlink -f "$lib")"
            mount --bind "$blank" "$lib" && hidden+=("$lib")
        fi
    done
    local data
    for data in /usr/lib/*/espeak-ng-data /usr/share/espeak-ng-data; do
        if [ -d "$data" ]; then mount --bind "$work/empty" "$data" && hidden+=("$data"); fi
    done
    mount --bind "$work/empty" "$repo" || fail "cannot hide $repo"
    hidden+=("$repo")
    hash -r
    local dir
    while IFS= read -r -d: dir; do
        if [ -n "$dir" ] && [ -f "$dir/espeak-ng" ] && [ -x "$dir/espeak-ng" ]; then
            fail "espeak-ng is still reachable on PATH: $dir/espeak-ng"
        fi
    done <<< "$PATH:"
    [ -z "$(ls -A "$repo")" ] || fail "$repo is still visible"
    echo "hidden: ${hidden[*]}"

    step "extract and install into $prefix (--espeak extract)"
    tar -xf "$tar" -C "$work/x" || fail "cannot extract the bundle"
    "$work/x/$name/install.sh" --prefix "$prefix" --espeak extract > "$work/install.log" 2>&1 || {
        cat "$work/install.log" >&2
        fail "install.sh failed"
    }
    sed 's/^/  | /' "$work/install.log"
    local f
    for f in bin/vctts bin/vctts-server bin/vctts-env lib/libonnxruntime.so.1.32.0 espeak/bin/espeak-ng \
        etc/vctts.env etc/gateway.env config/gateway.yaml config/worker-openvoice.yaml \
        systemd/vctts-gateway.service systemd/vctts-worker@.service systemd/vctts-standalone.service \
        models/openvoice/openvoice.pkg.sha256; do
        [ -e "$prefix/$f" ] || fail "the install lacks $f"
    done
    grep -q "^VCTTS_ESPEAK=$prefix/espeak/bin/espeak-ng\$" "$prefix/etc/vctts.env" ||
        fail "etc/vctts.env does not point VCTTS_ESPEAK at the bundled espeak-ng"
    grep -q "^ExecStart=$prefix/bin/vctts-server standalone " "$prefix/systemd/vctts-standalone.service" ||
        fail "the standalone unit does not run the installed binary"
    if grep -rq '@PREFIX@\|@USER@\|@GROUP@' "$prefix/systemd"; then
        fail "a unit still holds a template placeholder"
    fi
    local version
    version="$("$prefix/espeak/bin/espeak-ng" --version)" || fail "the bundled espeak-ng does not run"
    case "$version" in
        *"Data at: $prefix/espeak/"*) echo "espeak-ng: $version" ;;
        *) fail "the bundled espeak-ng does not read its own data: $version" ;;
    esac
    local listing
    listing="$("$prefix/bin/vctts-env" vctts models list)" || fail "vctts models list failed"
    grep -Eq "^openvoice +complete +$prefix/models/openvoice\$" <<< "$listing" || {
        echo "$listing" >&2
        fail "the restored openvoice model is not complete"
    }
    grep -q "checksums match openvoice.pkg.sha256" <<< "$listing" ||
        fail "the restored model was not checked against its checksums"

    step "start vctts-server standalone from the prefix"
    local log="$work/server.log"
    (cd "$prefix" && exec "$prefix/bin/vctts-env" vctts-server standalone \
        --config "$prefix/config/gateway.yaml" --host 127.0.0.1 --port 0) > "$log" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + 60)) url=""
    while [ -z "$url" ]; do
        url="$(sed -n 's/^vctts-server standalone listening on \(http:[^ ]*\)$/\1/p' "$log" | head -n1)"
        [ -n "$url" ] && break
        kill -0 "$SERVER_PID" 2> /dev/null || {
            cat "$log" >&2
            fail "the server exited before listening"
        }
        [ "$SECONDS" -lt "$deadline" ] || {
            cat "$log" >&2
            fail "the server did not listen within 60 s"
        }
        sleep 0.1
    done
    echo "listening on $url"
    local code=""
    deadline=$((SECONDS + 120))
    while :; do
        code="$(curl --noproxy "*" -sS -m 5 -o "$work/health.json" -w '%{http_code}' "$url/api/v3/health" 2> /dev/null || true)"
        [ "$code" != 200 ] || break
        kill -0 "$SERVER_PID" 2> /dev/null || {
            cat "$log" >&2
            fail "the server exited while loading"
        }
        [ "$SECONDS" -lt "$deadline" ] || {
            cat "$log" "$work/health.json" >&2
            fail "the server was not ready within 120 s (last /api/v3/health: $code)"
        }
        sleep 0.2
    done
    echo "ready: $(cat "$work/health.json")"

    step "synthesize a sentence with the default voice"
    local headers="$work/headers.txt" wav="$work/hello.wav"
    code="$(curl --noproxy "*" -sS -m 120 -D "$headers" -o "$wav" -w '%{http_code}' -X POST "$url/api/v3/synthesize" \
        -H 'Content-Type: application/json' \
        -d '{"text": "Hello from the offline bundle. This machine has no network at all."}')" ||
        fail "the synthesis request failed"
    if [ "$code" != 200 ]; then
        cat "$wav" >&2
        echo >&2
        cat "$log" >&2
        fail "POST /api/v3/synthesize answered $code"
    fi
    grep -qi '^content-type: audio/wav' "$headers" || fail "the answer is not audio/wav: $(cat "$headers")"
    grep -qi '^x-engine: openvoice' "$headers" || fail "the answer does not say the openvoice engine made it"
    python3 "$work/check_wav.py" "$wav" --min-seconds 1.5 || fail "the WAV does not pass check_wav.py"

    step "stop the server (SIGTERM)"
    kill -TERM "$SERVER_PID"
    deadline=$((SECONDS + 30))
    while kill -0 "$SERVER_PID" 2> /dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || {
            cat "$log" >&2
            fail "the server did not stop within 30 s of SIGTERM"
        }
        sleep 0.1
    done
    local status=0
    wait "$SERVER_PID" || status=$?
    SERVER_PID=""
    [ "$status" -eq 0 ] || {
        cat "$log" >&2
        fail "the server exited with status $status after SIGTERM"
    }
    echo "stopped cleanly"
}

step "enter a network namespace with loopback only"
ns=(unshare --net --mount)
[ "$(id -u)" -eq 0 ] || ns=(unshare --map-root-user --net --mount)
"${ns[@]}" -- bash -c "$(declare -f inside); inside \"\$@\"" inside "$REPO" "$WORK" "$TAR" "$NAME" ||
    fail "the offline install or run failed (see above)"

step "passed: the bundle installs and speaks with no network"
