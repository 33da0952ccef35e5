#!/usr/bin/env bash
# Builds the offline bundle: one tar with everything vctts needs on a Linux
# x86_64 machine that has no network at all.
#
#   vctts-offline-<version>-linux-x86_64.tar
#     vctts-offline-<version>-linux-x86_64/
#       install.sh            the installer (scripts/bundle/install.sh)
#       bin/                  vctts, vctts-server
#       lib/                  libonnxruntime.so.1.32.0 (from scripts/setup.sh)
#       debs/                 espeak-ng, its data and the libraries it needs that
#                             a minimal Debian 12 lacks (apt-get download)
#       models/<name>/        one split-volume package per installed model folder
#                             (vctts models pack)
#       config/ docs/         the project's configuration examples and documentation
#       share/systemd/        unit templates the installer fills in
#       LICENSE README.md
#       BUNDLE.txt            what is inside: versions, commit, packages
#       SHA256SUMS            every file above, checked by install.sh before it copies anything
#
# The version is the workspace's (Cargo.toml, [workspace.package]). Everything
# is staged in a temporary folder beside the output and renamed into place, so
# an interrupted run never leaves a half-written tar under the final name.
#
# Usage: scripts/bundle.sh [--profile release|debug] [--out DIR] [options]   (see --help)
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/bundle.sh [--profile release|debug] [--out DIR] [options]

Builds vctts-offline-<version>-linux-x86_64.tar in DIR (default: target/bundle).

Options:
  --profile P        release (default) or debug: the Cargo profile of the binaries
  --out DIR          where the tar goes (created if missing)
  --models DIR       the models folder whose complete engine folders are packed
                     (default: models)
  --part-size SIZE   part size of the model packages (default: 100M)
  --debs-from DIR    take the .deb files from DIR instead of apt-get download
                     (for building the bundle on a machine without apt or network)
  --strip            strip debug info from the copied binaries (default for debug)
  --no-strip         keep it (default for release, whose line tables make
                     backtraces readable)
  --no-build         do not run cargo; use the binaries already built
  -q, --quiet        print only warnings, errors and the result
  -h, --help         this help

Needs: cargo (unless --no-build), .vctts/lib/libonnxruntime.so.1.32.0 (run
scripts/setup.sh), apt-get and apt-cache with Debian package lists (unless
--debs-from), sha256sum, tar. Downloaded .debs are cached in .vctts/cache/debs/.
EOF
}

die() {
    echo "bundle: error: $*" >&2
    exit 1
}
QUIET=0
say() { if [ "$QUIET" -eq 0 ]; then echo "bundle: $*"; fi; }
warn() { echo "bundle: warning: $*" >&2; }

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"

PROFILE=release
OUT="$REPO/target/bundle"
MODELS="$REPO/models"
PART_SIZE=100M
DEBS_FROM=""
STRIP=""
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --profile)
            [ $# -ge 2 ] || die "--profile needs a value (release or debug)"
            PROFILE="$2"
            shift 2
            ;;
        --profile=*) PROFILE="${1#*=}"; shift ;;
        --out)
            [ $# -ge 2 ] || die "--out needs a folder"
            OUT="$2"
            shift 2
            ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --models)
            [ $# -ge 2 ] || die "--models needs a folder"
            MODELS="$2"
            shift 2
            ;;
        --models=*) MODELS="${1#*=}"; shift ;;
        --part-size)
            [ $# -ge 2 ] || die "--part-size needs a size, e.g. 100M"
            PART_SIZE="$2"
            shift 2
            ;;
        --part-size=*) PART_SIZE="${1#*=}"; shift ;;
        --debs-from)
            [ $# -ge 2 ] || die "--debs-from needs a folder"
            DEBS_FROM="$2"
            shift 2
            ;;
        --debs-from=*) DEBS_FROM="${1#*=}"; shift ;;
        --strip) STRIP=1; shift ;;
        --no-strip) STRIP=0; shift ;;
        --no-build) BUILD=0; shift ;;
        -q | --quiet) QUIET=1; shift ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            die "unknown argument '$1'"
            ;;
    esac
done

case "$PROFILE" in
    release) CARGO_PROFILE=release; PROFILE_DIR=release ;;
    debug | dev) PROFILE=debug; CARGO_PROFILE=dev; PROFILE_DIR=debug ;;
    *) die "--profile must be release or debug, got '$PROFILE'" ;;
esac
[ -n "$STRIP" ] || { if [ "$PROFILE" = debug ]; then STRIP=1; else STRIP=0; fi; }

abs() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
OUT="$(abs "$OUT")"
MODELS="$(abs "$MODELS")"
[ -z "$DEBS_FROM" ] || DEBS_FROM="$(abs "$DEBS_FROM")"

have() { command -v "$1" > /dev/null 2>&1; }
for tool in sha256sum tar awk sed; do
    have "$tool" || die "$tool is required"
done

[ "$(uname -s)" = Linux ] || die "the bundle is for Linux; this is $(uname -s)"
[ "$(uname -m)" = x86_64 ] || die "the bundle is for x86_64; this machine is $(uname -m)"

# ----------------------------------------------------------------- version
VERSION="$(awk '
    /^\[workspace\.package\]/ { inside = 1; next }
    /^\[/ { inside = 0 }
    inside && $1 == "version" { gsub(/[" ]/, "", $3); print $3; exit }
' "$REPO/Cargo.toml")"
[ -n "$VERSION" ] || die "cannot read version from [workspace.package] in Cargo.toml"
NAME="vctts-offline-$VERSION-linux-x86_64"
TAR="$OUT/$NAME.tar"
say "building $NAME ($PROFILE binaries)"

# ---------------------------------------------------- pinned ONNX Runtime
VCTTS_HOME="${VCTTS_HOME:-$REPO/.vctts}"
ORT_FILE=libonnxruntime.so.1.32.0
ORT_SHA=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f # as in scripts/setup.sh
ORT_LIB="$VCTTS_HOME/lib/$ORT_FILE"
[ -f "$ORT_LIB" ] || die "$ORT_LIB is missing; run scripts/setup.sh first"
[ "$(sha256sum "$ORT_LIB" | cut -d' ' -f1)" = "$ORT_SHA" ] ||
    die "$ORT_LIB does not have the pinned SHA-256 $ORT_SHA; run scripts/setup.sh again"

# ------------------------------------------------------------------ build
if [ "$BUILD" -eq 1 ]; then
    have cargo || die "cargo is required (or pass --no-build with binaries already built)"
    say "cargo build --profile $CARGO_PROFILE -p vctts-cli -p vctts-server --bin vctts --bin vctts-server"
    cargo_quiet=()
    [ "$QUIET" -eq 1 ] && cargo_quiet=(-q)
    (cd "$REPO" && cargo build "${cargo_quiet[@]}" --profile "$CARGO_PROFILE" -p vctts-cli -p vctts-server --bin vctts --bin vctts-server) ||
        die "cargo build failed"
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
BIN_DIR="$TARGET_DIR/$PROFILE_DIR"
for b in vctts vctts-server; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b is missing; build it (drop --no-build)"
done

# ----------------------------------------------------------------- staging
mkdir -p -- "$OUT"
STAGE_ROOT="$(mktemp -d "$OUT/.bundle.XXXXXX")"
cleanup() { rm -rf -- "$STAGE_ROOT"; }
trap cleanup EXIT
STAGE="$STAGE_ROOT/$NAME"
mkdir -p "$STAGE"/{bin,lib,debs,models,share/systemd}

# Copy the binaries first: another build in the same target/ may replace them.
for b in vctts vctts-server; do
    cp -- "$BIN_DIR/$b" "$STAGE/bin/$b.tmp"
    if [ "$STRIP" -eq 1 ]; then
        if have objcopy; then
            objcopy --strip-debug "$STAGE/bin/$b.tmp" || die "objcopy --strip-debug $b failed"
        else
            warn "objcopy not found; $b keeps its debug info"
        fi
    fi
    chmod 0755 "$STAGE/bin/$b.tmp"
    mv -- "$STAGE/bin/$b.tmp" "$STAGE/bin/$b"
done
"$STAGE/bin/vctts" --version > /dev/null || die "the copied vctts binary does not run"
"$STAGE/bin/vctts-server" --version > /dev/null || die "the copied vctts-server binary does not run"
install -m 0644 -- "$ORT_LIB" "$STAGE/lib/$ORT_FILE"

# ------------------------------------------------------------- espeak-ng
# The bundled packages: espeak-ng and everything it depends on (Depends and
# Pre-Depends, recursively, first alternative of each group), minus the
# packages every Debian 12 system has. That base set is what debootstrap's
# minbase variant installs: libc6 and the compiler runtime it needs, and the
# libraries dpkg and apt themselves link (libsystemd0 and its libraries, the
# compression libraries, libmd0). Everything else, down to libpulse0 and the
# X11 client libraries that libpcaudio0 links, is bundled: the installer must
# work on a bare system with no network.
ESPEAK_ROOTS=(espeak-ng espeak-ng-data libespeak-ng1)
BASE_PACKAGES=" libc6 libgcc-s1 gcc-12-base libstdc++6 libzstd1 liblzma5 liblz4-1 libbz2-1.0 zlib1g libmd0
    libsystemd0 libcap2 libgcrypt20 libgpg-error0 libselinux1 libpcre2-8-0 libcrypt1 "
read -r -a base_list <<< "$(tr '\n' ' ' <<< "$BASE_PACKAGES")"
BASE_PACKAGES=" ${base_list[*]} " # one space between names, for the match below

# Prints the packages to bundle, one per line. One apt-cache call per level of
# the dependency tree (each call costs about half a second).
resolve_packages() {
    local -A seen=()
    local level=("${ESPEAK_ROOTS[@]}")
    while [ "${#level[@]}" -gt 0 ]; do
        local ask=() pkg
        for pkg in "${level[@]}"; do
            [ -z "${seen[$pkg]:-}" ] || continue
            seen[$pkg]=1
            case "$BASE_PACKAGES" in *" $pkg "*) continue ;; esac
            printf '%s\n' "$pkg"
            ask+=("$pkg")
        done
        level=()
        [ "${#ask[@]}" -gt 0 ] || break
        local deps
        deps="$(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
            --no-replaces --no-enhances "${ask[@]}" 2> /dev/null)" ||
            die "apt-cache depends ${ask[*]} failed (are the Debian package lists there? run apt-get update)"
        # Per package: its name on a line of its own, then "  Depends: x" /
        # "  PreDepends: x"; "  |Depends: a" starts a group of alternatives whose
        # next line is the second choice: take the first of each group.
        local in_group=0 line
        while IFS= read -r line; do
            case "$line" in
                "  |Depends: "* | "  |PreDepends: "*)
                    [ "$in_group" -eq 1 ] || level+=("${line#*: }")
                    in_group=1
                    ;;
                "  Depends: "* | "  PreDepends: "*)
                    [ "$in_group" -eq 1 ] || level+=("${line#*: }")
                    in_group=0
                    ;;
                [!\ ]*) in_group=0 ;;
            esac
        done <<< "$deps"
    done
}

DEBS="$STAGE/debs"
if [ -n "$DEBS_FROM" ]; then
    [ -d "$DEBS_FROM" ] || die "--debs-from $DEBS_FROM is not a folder"
    cp -- "$DEBS_FROM"/*.deb "$DEBS/" 2> /dev/null || die "no .deb files in $DEBS_FROM"
    say "took $(find "$DEBS" -name '*.deb' | wc -l) .deb files from $DEBS_FROM"
else
    if ! have apt-get || ! have apt-cache; then
        die "apt-get and apt-cache are required (or pass --debs-from DIR)"
    fi
    mapfile -t PACKAGES < <(resolve_packages)
    [ "${#PACKAGES[@]}" -gt 0 ] || die "no espeak-ng packages resolved"
    for p in "${PACKAGES[@]}"; do
        case "$p" in *'<'* | *'>'*) die "espeak-ng depends on the virtual package $p; bundle a provider with --debs-from" ;; esac
    done
    say "espeak-ng packages: ${PACKAGES[*]}"
    DEB_CACHE="$VCTTS_HOME/cache/debs"
    mkdir -p -- "$DEB_CACHE"
    # Candidate version and architecture of every package, in two apt-cache calls.
    declare -A CANDIDATE=() ARCH=()
    while read -r p ver; do CANDIDATE[$p]="$ver"; done < <(apt-cache policy "${PACKAGES[@]}" |
        awk '/^[^ ].*:$/ { sub(/:$/, ""); p = $0 } /^  Candidate: / { print p, $2 }')
    while read -r p arch; do ARCH[$p]="$arch"; done < <(apt-cache show --no-all-versions "${PACKAGES[@]}" |
        awk '/^Package: / { p = $2 } /^Architecture: / { print p, $2 }')
    fetch=()
    for p in "${PACKAGES[@]}"; do
        ver="${CANDIDATE[$p]:-}"
        arch="${ARCH[$p]:-}"
        { [ -n "$ver" ] && [ "$ver" != "(none)" ] && [ -n "$arch" ]; } ||
            die "apt knows no installable version of $p (run apt-get update)"
        file="${p}_${ver//:/%3a}_${arch}.deb"
        if [ ! -f "$DEB_CACHE/$file" ] || ! dpkg-deb --info "$DEB_CACHE/$file" > /dev/null 2>&1; then
            fetch+=("$p=$ver")
        fi
        printf '%s\n' "$file" >> "$STAGE_ROOT/deb-files"
    done
    if [ "${#fetch[@]}" -gt 0 ]; then
        say "apt-get download ${fetch[*]}"
        dl="$(mktemp -d "$DEB_CACHE/.download.XXXXXX")"
        # apt drops privileges to _apt for downloads; let it write here.
        chmod 0777 "$dl"
        if ! (cd "$dl" && apt-get download -q "${fetch[@]}" > "$dl/.log" 2>&1); then
            cat "$dl/.log" >&2
            rm -rf -- "$dl"
            die "apt-get download failed (is the Debian mirror reachable?)"
        fi
        mv -f -- "$dl"/*.deb "$DEB_CACHE/"
        rm -rf -- "$dl"
    fi
    while IFS= read -r file; do
        [ -f "$DEB_CACHE/$file" ] || die "apt-get download did not produce $file"
        cp -- "$DEB_CACHE/$file" "$DEBS/$file"
    done < "$STAGE_ROOT/deb-files"
fi
for d in "$DEBS"/*.deb; do
    dpkg-deb --info "$d" > /dev/null 2>&1 || die "$(basename "$d") is not a valid Debian package"
done
for root in "${ESPEAK_ROOTS[@]}"; do
    ls "$DEBS/${root}_"*.deb > /dev/null 2>&1 || die "the bundle lacks the $root package"
done
ESPEAK_VERSION="$(basename "$(ls "$DEBS"/espeak-ng_*.deb)" | cut -d_ -f2)"

# ----------------------------------------------------------------- models
VCTTS="$STAGE/bin/vctts"
packed=()
if [ -d "$MODELS" ]; then
    # `vctts models list` prints "<engine> <state> <folder>" per engine.
    while read -r engine folder; do
        name="$(basename "$folder")"
        say "packing $engine model $name ($PART_SIZE parts)"
        pack_args=(models pack "$MODELS/$name" --out "$STAGE/models/$name" --part-size "$PART_SIZE" --engine "$engine")
        if [ "$QUIET" -eq 1 ]; then
            "$VCTTS" "${pack_args[@]}" > /dev/null 2>&1 || die "vctts models pack $MODELS/$name failed"
        else
            "$VCTTS" "${pack_args[@]}" 2> /dev/null | sed -n 's/^packed /bundle:   packed /p' ||
                die "vctts models pack $MODELS/$name failed"
        fi
        "$VCTTS" models verify "$STAGE/models/$name" > /dev/null 2>&1 || die "the package of $name does not verify"
        packed+=("$name ($engine)")
    done < <("$VCTTS" models list --models "$MODELS" | sed -n 's/^\([a-z-]*\)  *complete  *\(.*\)$/\1 \2/p')
fi
[ "${#packed[@]}" -gt 0 ] || warn "no complete model folder in $MODELS; the bundle has no models (run scripts/setup.sh)"

# ------------------------------------------------ config, docs, installer
copy_tree() { # src dest: copies a folder's contents, skipping editor/VCS leftovers
    mkdir -p -- "$2"
    if [ -d "$1" ]; then
        (cd "$1" && find . -type f ! -name '*~' ! -name '.*' -print0) |
            while IFS= read -r -d '' f; do
                mkdir -p -- "$2/$(dirname -- "$f")"
                cp -- "$1/$f" "$2/$f"
            done
    fi
}
copy_tree "$REPO/config" "$STAGE/config"
copy_tree "$REPO/docs" "$STAGE/docs"
[ -n "$(ls -A "$STAGE/config")" ] || warn "config/ is empty; install.sh writes minimal configs"
install -m 0755 -- "$REPO/scripts/bundle/install.sh" "$STAGE/install.sh"
for unit in "$REPO"/scripts/bundle/systemd/*.in; do
    install -m 0644 -- "$unit" "$STAGE/share/systemd/$(basename "$unit")"
done
install -m 0644 -- "$REPO/LICENSE" "$STAGE/LICENSE"
install -m 0644 -- "$REPO/README.md" "$STAGE/README.md"

COMMIT="$(git -C "$REPO" rev-parse --short=12 HEAD 2> /dev/null || echo unknown)"
if [ "$COMMIT" != unknown ] && [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2> /dev/null)" ]; then
    COMMIT="$COMMIT (with uncommitted changes)"
fi
{
    echo "vctts offline bundle"
    echo "version:      $VERSION"
    echo "commit:       $COMMIT"
    echo "profile:      $PROFILE"
    echo "built:        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "platform:     linux x86_64 (glibc; Debian 12 packages for espeak-ng)"
    echo "onnxruntime:  1.32.0 (CPU), lib/$ORT_FILE"
    echo "espeak-ng:    $ESPEAK_VERSION"
    echo "models:       ${packed[*]:-none}"
    echo "debs:"
    (cd "$DEBS" && find . -maxdepth 1 -name '*.deb' -printf '  %f\n' | sort)
    echo
    echo "Install: ./install.sh --prefix /opt/vctts   (./install.sh --help for the options)"
} > "$STAGE/BUNDLE.txt"

(cd "$STAGE" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum | sed 's#  \./#  #') > "$STAGE/SHA256SUMS"

# -------------------------------------------------------------------- tar
MTIME="$(git -C "$REPO" log -1 --format=%ct 2> /dev/null || date +%s)"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$MTIME" \
    -C "$STAGE_ROOT" -cf "$STAGE_ROOT/$NAME.tar" "$NAME" || die "tar failed"
mv -f -- "$STAGE_ROOT/$NAME.tar" "$TAR"
size="$(du -h "$TAR" | cut -f1)"
say "wrote $TAR ($size)"
say "install it on the target: tar -xf $NAME.tar && $NAME/install.sh --prefix /opt/vctts"
[ "$QUIET" -eq 0 ] || echo "$TAR"
