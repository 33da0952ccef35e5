#!/usr/bin/env bash
# vctts offline installer, shipped at the top of the offline bundle
# (scripts/bundle.sh copies this file there). It uses no network: everything
# it installs is inside the bundle, and every file is checked against the
# bundle's SHA256SUMS before anything is copied.
#
# Layout it creates under the prefix:
#   bin/       vctts, vctts-server, vctts-env (runs a command with etc/vctts.env loaded)
#   lib/       libonnxruntime.so.1.32.0
#   espeak/    espeak-ng extracted from the bundled .debs (only when it is not
#              installed system-wide), with a wrapper espeak/bin/espeak-ng
#   models/    one folder per engine, restored and verified from the packages
#   config/    gateway.yaml, worker-<engine>.yaml, the bundle's examples
#   etc/       vctts.env (every role), gateway.env (gateway and standalone only)
#   systemd/   vctts-gateway.service, vctts-worker@.service, vctts-standalone.service
#   data/ logs/ docs/
#
# Running it again upgrades in place: binaries, runtime, docs and models are
# replaced (models only when the package differs), while configs, secrets in
# etc/ and the voice store in data/ are kept.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: install.sh --prefix DIR [options]

Installs vctts from this offline bundle under DIR. No network is used.

Options:
  --prefix DIR          where to install (e.g. /opt/vctts); created if missing
  --user USER           the account the services run as and that owns data/,
                        logs/ and etc/ (default: the user running install.sh;
                        create one with: useradd --system --home-dir DIR vctts)
  --systemd             also install the units into /etc/systemd/system and run
                        systemctl daemon-reload (root only)
  --no-systemd          do not write systemd units at all
  --espeak MODE         how to provide espeak-ng:
                          auto     (default) the system's if it works; else, as
                                   root, dpkg -i of the bundled .debs; else extract
                          system   require the system's espeak-ng
                          dpkg     dpkg -i the bundled packages that are missing (root)
                          extract  dpkg -x the bundled .debs into DIR/espeak and
                                   point vctts at them (no root needed)
  --gateway-url URL     the gateway generated worker configs register with
                        (default: http://127.0.0.1:8000)
  -h, --help            this help
EOF
}

die() {
    echo "install: error: $*" >&2
    exit 1
}
say() { echo "install: $*"; }
warn() { echo "install: warning: $*" >&2; }
# The executable regular file NAME on PATH, if any. (`command -v` and `type -P`
# also return files that exist without execute permission.)
find_exe() {
    local dir IFS=:
    for dir in $PATH; do
        if [ -n "$dir" ] && [ -f "$dir/$1" ] && [ -x "$dir/$1" ]; then
            printf '%s\n' "$dir/$1"
            return 0
        fi
    done
    return 1
}
have() { find_exe "$1" > /dev/null; }

BUNDLE="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
PREFIX=""
RUN_USER=""
SYSTEMD="write"
ESPEAK_MODE=auto
GATEWAY_URL="http://127.0.0.1:8000"
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix)
            [ $# -ge 2 ] || die "--prefix needs a folder"
            PREFIX="$2"
            shift 2
            ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --user)
            [ $# -ge 2 ] || die "--user needs a user name"
            RUN_USER="$2"
            shift 2
            ;;
        --user=*) RUN_USER="${1#*=}"; shift ;;
        --systemd) SYSTEMD=install; shift ;;
        --no-systemd) SYSTEMD=none; shift ;;
        --espeak)
            [ $# -ge 2 ] || die "--espeak needs a mode (auto, system, dpkg, extract)"
            ESPEAK_MODE="$2"
            shift 2
            ;;
        --espeak=*) ESPEAK_MODE="${1#*=}"; shift ;;
        --gateway-url)
            [ $# -ge 2 ] || die "--gateway-url needs a URL"
            GATEWAY_URL="$2"
            shift 2
            ;;
        --gateway-url=*) GATEWAY_URL="${1#*=}"; shift ;;
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

[ -n "$PREFIX" ] || {
    usage >&2
    die "--prefix DIR is required"
}
case "$ESPEAK_MODE" in auto | system | dpkg | extract) ;; *) die "--espeak must be auto, system, dpkg or extract, got '$ESPEAK_MODE'" ;; esac
case "$GATEWAY_URL" in http://* | https://*) ;; *) die "--gateway-url must start with http:// or https://, got '$GATEWAY_URL'" ;; esac
case "$PREFIX" in
    /*) ;;
    *) PREFIX="$PWD/$PREFIX" ;;
esac
case "$PREFIX" in *[[:space:]\"\'\$\`\\]*) die "--prefix must not contain spaces, quotes, \$, \` or \\ (it is written into unit and env files)" ;; esac
PREFIX="${PREFIX%/}"
[ -n "$PREFIX" ] || die "--prefix must not be /"

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1
if [ -z "$RUN_USER" ]; then
    RUN_USER="$(id -un)"
    [ "$IS_ROOT" -eq 0 ] || warn "the services will run as root; pass --user USER to run them as an unprivileged account"
fi
id "$RUN_USER" > /dev/null 2>&1 || die "user '$RUN_USER' does not exist (create it: useradd --system --home-dir $PREFIX $RUN_USER)"
RUN_GROUP="$(id -gn "$RUN_USER")"
if [ "$RUN_USER" != "$(id -un)" ] && [ "$IS_ROOT" -eq 0 ]; then
    die "only root can install for another user ('$RUN_USER')"
fi
[ "$SYSTEMD" != install ] || [ "$IS_ROOT" -eq 1 ] || die "--systemd needs root (it writes /etc/systemd/system)"

[ "$(uname -s)" = Linux ] || die "this bundle is for Linux; this is $(uname -s)"
[ "$(uname -m)" = x86_64 ] || die "this bundle is for x86_64; this machine is $(uname -m)"
for tool in sha256sum install mktemp find sed; do
    have "$tool" || die "$tool is required"
done

# --------------------------------------------------- check the bundle first
[ -f "$BUNDLE/SHA256SUMS" ] || die "$BUNDLE/SHA256SUMS is missing: this is not a complete vctts bundle"
say "checking the bundle ($(wc -l < "$BUNDLE/SHA256SUMS") files)"
if ! bad="$(cd "$BUNDLE" && sha256sum -c --quiet SHA256SUMS 2>&1)"; then
    echo "$bad" >&2
    die "the bundle is damaged (the files above fail their SHA-256); copy the tar again"
fi
VERSION="$(sed -n 's/^version: *//p' "$BUNDLE/BUNDLE.txt")"
say "installing vctts $VERSION into $PREFIX"

mkdir -p -- "$PREFIX"/{bin,lib,models,config,docs,data,logs,etc,share}

# Atomically replaces $2 with a copy of $1 with mode $3.
put() {
    local tmp
    tmp="$(mktemp "$(dirname -- "$2")/.install.XXXXXX")"
    cp -- "$1" "$tmp"
    chmod "$3" "$tmp"
    mv -f -- "$tmp" "$2"
}

# Writes stdin to $1 (mode $2) unless it exists; says which.
write_new() {
    if [ -e "$1" ]; then
        cat > /dev/null
        say "kept ${1#"$PREFIX"/} (exists)"
        return
    fi
    local tmp
    tmp="$(mktemp "$(dirname -- "$1")/.install.XXXXXX")"
    cat > "$tmp"
    chmod "$2" "$tmp"
    mv -f -- "$tmp" "$1"
    say "wrote ${1#"$PREFIX"/}"
}

# Writes stdin to $1 (mode $2), replacing it atomically.
write_file() {
    local tmp
    tmp="$(mktemp "$(dirname -- "$1")/.install.XXXXXX")"
    cat > "$tmp"
    chmod "$2" "$tmp"
    mv -f -- "$tmp" "$1"
}

# ------------------------------------------------------ binaries, runtime
put "$BUNDLE/bin/vctts" "$PREFIX/bin/vctts" 0755
put "$BUNDLE/bin/vctts-server" "$PREFIX/bin/vctts-server" 0755
put "$BUNDLE/lib/libonnxruntime.so.1.32.0" "$PREFIX/lib/libonnxruntime.so.1.32.0" 0644
"$PREFIX/bin/vctts" --version > /dev/null || die "$PREFIX/bin/vctts does not run on this machine"
"$PREFIX/bin/vctts-server" --version > /dev/null || die "$PREFIX/bin/vctts-server does not run on this machine"
say "installed bin/vctts, bin/vctts-server, lib/libonnxruntime.so.1.32.0"

# -------------------------------------------------------------- espeak-ng
ESPEAK_BIN=""
espeak_works() { # binary: prints phonemes of a test word
    local out
    out="$(printf 'hello\n' | "$1" -q --ipa -v en-us 2> /dev/null)" && [ -n "$out" ]
}

espeak_dpkg() {
    if ! have dpkg || ! have dpkg-query; then
        die "--espeak dpkg needs dpkg"
    fi
    local missing=() deb pkg
    for deb in "$BUNDLE"/debs/*.deb; do
        pkg="$(dpkg-deb -f "$deb" Package)"
        if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2> /dev/null)" = "ii " ]; then
            continue
        fi
        missing+=("$deb")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "dpkg -i ${#missing[@]} bundled packages"
        if ! dpkg -i "${missing[@]}" > "$PREFIX/logs/install-dpkg.log" 2>&1; then
            cat "$PREFIX/logs/install-dpkg.log" >&2
            die "dpkg -i failed (log above, also in logs/install-dpkg.log). Undo with dpkg --remove on the \
packages it names, or install with --espeak extract, which touches nothing outside $PREFIX"
        fi
    fi
    have espeak-ng || die "espeak-ng is not on PATH after dpkg -i"
    ESPEAK_BIN="$(find_exe espeak-ng)"
    espeak_works "$ESPEAK_BIN" || die "$ESPEAK_BIN does not produce phonemes"
    say "espeak-ng installed system-wide with dpkg: $ESPEAK_BIN"
}

espeak_extract() {
    have dpkg-deb || die "--espeak extract needs dpkg-deb (part of dpkg)"
    local final="$PREFIX/espeak" new="$PREFIX/.espeak.new" deb
    rm -rf -- "$new"
    mkdir -p -- "$new/bin"
    for deb in "$BUNDLE"/debs/*.deb; do
        dpkg-deb -x "$deb" "$new" || die "dpkg-deb -x $(basename "$deb") failed"
    done
    local lib data
    lib="$(find "$new" -name 'libespeak-ng.so.1' | head -n1)"
    data="$(find "$new" -type d -name espeak-ng-data -path '*/lib/*' | head -n1)"
    if [ -z "$lib" ] || [ -z "$data" ] || [ ! -x "$new/usr/bin/espeak-ng" ]; then
        die "the bundled packages lack espeak-ng, libespeak-ng.so.1 or espeak-ng-data"
    fi
    lib="$(dirname -- "$lib")"
    lib="$final${lib#"$new"}"
    data="$final$(dirname -- "${data#"$new"}")"
    # The wrapper gives espeak-ng its libraries (libpulse0 keeps libpulsecommon
    # in a pulseaudio/ subfolder reached through an absolute RUNPATH, hence the
    # second entry) and its data; both only for this process, never for vctts.
    cat > "$new/bin/espeak-ng" <<EOF
#!/bin/sh
# espeak-ng from the vctts offline bundle, extracted with dpkg -x (written by install.sh).
LD_LIBRARY_PATH="$lib:$lib/pulseaudio\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
ESPEAK_DATA_PATH="$data"
export LD_LIBRARY_PATH ESPEAK_DATA_PATH
exec "$final/usr/bin/espeak-ng" "\$@"
EOF
    chmod 0755 "$new/bin/espeak-ng"
    rm -rf -- "$final"
    mv -- "$new" "$final"
    ESPEAK_BIN="$final/bin/espeak-ng"
    local version
    version="$("$ESPEAK_BIN" --version 2>&1)" || die "the extracted espeak-ng does not start: $version"
    case "$version" in
        *"Data at: $data/espeak-ng-data"*) ;;
        *) die "the extracted espeak-ng does not use its own data ($version)" ;;
    esac
    espeak_works "$ESPEAK_BIN" || die "the extracted espeak-ng does not produce phonemes"
    say "espeak-ng extracted into espeak/ (${version%%  Data*})"
}

case "$ESPEAK_MODE" in
    system)
        have espeak-ng || die "--espeak system: espeak-ng is not on PATH"
        ESPEAK_BIN="$(find_exe espeak-ng)"
        espeak_works "$ESPEAK_BIN" || die "--espeak system: $ESPEAK_BIN does not produce phonemes"
        say "using the system's espeak-ng: $ESPEAK_BIN"
        ;;
    dpkg)
        [ "$IS_ROOT" -eq 1 ] || die "--espeak dpkg needs root"
        espeak_dpkg
        ;;
    extract) espeak_extract ;;
    auto)
        if have espeak-ng && espeak_works "$(find_exe espeak-ng)"; then
            ESPEAK_BIN="$(find_exe espeak-ng)"
            say "using the system's espeak-ng: $ESPEAK_BIN"
        elif [ "$IS_ROOT" -eq 1 ] && have dpkg; then
            espeak_dpkg
        else
            espeak_extract
        fi
        ;;
esac
[ "$ESPEAK_BIN" = "$PREFIX/espeak/bin/espeak-ng" ] || rm -rf -- "$PREFIX/espeak"

# ----------------------------------------------------------------- models
restored=()
for pkg in "$BUNDLE"/models/*/; do
    [ -d "$pkg" ] || continue
    pkg="${pkg%/}"
    name="$(basename -- "$pkg")"
    dest="$PREFIX/models/$name"
    if [ -f "$dest/$name.pkg.sha256" ] && cmp -s "$dest/$name.pkg.sha256" "$pkg/$name.pkg.sha256"; then
        say "model $name: the same package is installed; checking its files"
    else
        say "model $name: restoring and verifying"
        replace=()
        [ -e "$dest" ] && replace=(--replace)
        # Progress lines ("restoring:  40% ...") are dropped; the result line stays.
        "$PREFIX/bin/vctts" models restore "$pkg" --to "$dest" "${replace[@]}" 2>&1 |
            { grep -v -E '^[a-z]+: +[0-9]+% ' || true; } | sed 's/^/install:   /' ||
            die "restoring model $name failed (see above); the previous $dest, if any, is unchanged"
    fi
    restored+=("$name")
done
if [ "${#restored[@]}" -gt 0 ]; then
    listing="$("$PREFIX/bin/vctts" models list --models "$PREFIX/models")"
    for name in "${restored[@]}"; do
        if ! printf '%s\n' "$listing" | grep -q -E "^[a-z-]+ +complete +$PREFIX/models/$name\$"; then
            printf '%s\n' "$listing" >&2
            die "model $name is not complete after restoring it (see above)"
        fi
    done
    say "models complete and checksummed: ${restored[*]}"
else
    warn "the bundle has no model packages; restore them later with: $PREFIX/bin/vctts models restore PKGDIR --to $PREFIX/models/NAME"
fi
# The engine of each restored model folder, as `vctts models list` names it.
# Its lines read "<engine>  <state>  <folder>"; states may be several words.
engines=()
while read -r engine _folder; do
    engines+=("$engine")
done < <("$PREFIX/bin/vctts" models list --models "$PREFIX/models" | sed -n 's/^\([a-z-]*\)  *complete  *\(.*\)$/\1 \2/p')

# --------------------------------------------------------- config and docs
if [ -d "$BUNDLE/config" ]; then
    while IFS= read -r -d '' f; do
        rel="${f#"$BUNDLE/config/"}"
        mkdir -p -- "$(dirname -- "$PREFIX/config/$rel")"
        if [ ! -e "$PREFIX/config/$rel" ]; then
            put "$f" "$PREFIX/config/$rel" 0644
        elif ! cmp -s "$f" "$PREFIX/config/$rel"; then
            put "$f" "$PREFIX/config/$rel.new" 0644
            say "kept your config/$rel; this version's copy is config/$rel.new"
        fi
    done < <(find "$BUNDLE/config" -type f -print0)
fi
write_new "$PREFIX/config/gateway.yaml" 0644 <<EOF
# vctts gateway (and standalone) configuration, written by install.sh.
# Every key and its default: docs/DEPLOYMENT.md. Secrets come from etc/*.env.
server:  { host: 127.0.0.1, port: 8000 }
storage: { data_dir: $PREFIX/data }
EOF
for engine in "${engines[@]}"; do
    write_new "$PREFIX/config/worker-$engine.yaml" 0644 <<EOF
# vctts worker hosting $engine, written by install.sh; run it with
#   systemctl start vctts-worker@$engine   (or: $PREFIX/bin/vctts-env $PREFIX/bin/vctts-server worker --config $PREFIX/config/worker-$engine.yaml)
# Bind a non-loopback host and point gateway.url at the gateway's machine for a
# cluster; the cluster token comes from etc/vctts.env (VCTTS_CLUSTER__TOKEN).
worker:  { type: $engine, host: 127.0.0.1 }
gateway: { url: "$GATEWAY_URL" }
model:   { path: $PREFIX/models, device: cpu, auto_load: true }
EOF
done
rm -rf -- "$PREFIX/docs"
mkdir -p -- "$PREFIX/docs"
if [ -d "$BUNDLE/docs" ]; then
    cp -R -- "$BUNDLE/docs/." "$PREFIX/docs/"
fi
for f in README.md LICENSE BUNDLE.txt; do
    put "$BUNDLE/$f" "$PREFIX/share/$f" 0644
done

# --------------------------------------------------------- the environment
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
{
    echo "# vctts environment for every role (gateway, worker, standalone, CLI), written by install.sh."
    echo "# Loaded by the systemd units and by bin/vctts-env. Keep it private: it holds the cluster token."
    echo "VCTTS_ORT_LIB=$PREFIX/lib/libonnxruntime.so.1.32.0"
    echo "VCTTS_MODELS=$PREFIX/models"
    echo "VCTTS_DATA=$PREFIX/data"
    if [ "$ESPEAK_BIN" = "$PREFIX/espeak/bin/espeak-ng" ]; then
        echo "VCTTS_ESPEAK=$ESPEAK_BIN"
    fi
    echo "# The shared secret between the gateway and its workers: the same value on every machine."
    echo "VCTTS_CLUSTER__TOKEN=vctts_$(random_hex 24)"
} > "$PREFIX/etc/.vctts.env.new"
if [ -f "$PREFIX/etc/vctts.env" ]; then
    # Keep the token (workers elsewhere have it); refresh the paths.
    token="$(sed -n 's/^VCTTS_CLUSTER__TOKEN=//p' "$PREFIX/etc/vctts.env")"
    if [ -n "$token" ]; then
        sed -i "s/^VCTTS_CLUSTER__TOKEN=.*/VCTTS_CLUSTER__TOKEN=$token/" "$PREFIX/etc/.vctts.env.new"
    fi
    extra="$(grep -v -E '^(#|VCTTS_ORT_LIB=|VCTTS_MODELS=|VCTTS_DATA=|VCTTS_ESPEAK=|VCTTS_CLUSTER__TOKEN=)' "$PREFIX/etc/vctts.env" || true)"
    [ -z "$extra" ] || printf '%s\n' "$extra" >> "$PREFIX/etc/.vctts.env.new"
fi
chmod 0600 "$PREFIX/etc/.vctts.env.new"
mv -f -- "$PREFIX/etc/.vctts.env.new" "$PREFIX/etc/vctts.env"
say "wrote etc/vctts.env"
ADMIN_PASSWORD_NEW=""
if [ ! -f "$PREFIX/etc/gateway.env" ]; then
    ADMIN_PASSWORD_NEW="admin_$(random_hex 9)"
fi
write_new "$PREFIX/etc/gateway.env" 0600 <<EOF
# Settings only the gateway and standalone roles read (a worker refuses an auth
# section), written by install.sh. The admin user is "admin".
VCTTS_AUTH__ADMIN_PASSWORD=$ADMIN_PASSWORD_NEW
EOF
write_file "$PREFIX/bin/vctts-env" 0755 <<EOF
#!/bin/sh
# Runs a command with the environment of this vctts install (written by install.sh):
#   $PREFIX/bin/vctts-env vctts-server standalone
# The gateway settings (etc/gateway.env) are added for the gateway and standalone roles.
set -a
. "$PREFIX/etc/vctts.env"
case " \$* " in
    *" gateway "* | *" standalone "*) [ ! -r "$PREFIX/etc/gateway.env" ] || . "$PREFIX/etc/gateway.env" ;;
esac
set +a
PATH="$PREFIX/bin:\$PATH"
export PATH
[ \$# -gt 0 ] || { env | grep '^VCTTS_' | sed 's/TOKEN=.*/TOKEN=(hidden)/; s/PASSWORD=.*/PASSWORD=(hidden)/'; exit 0; }
exec "\$@"
EOF

# ------------------------------------------- check the configs units use
# With the environment each role gets, as the units and vctts-env give it.
check_config() { # file, env files...
    local file="$1" out
    shift
    # shellcheck disable=SC1090 # the env files this installer wrote
    out="$(set -a && for e in "$@"; do . "$e"; done && set +a && "$PREFIX/bin/vctts-server" check-config "$file" 2>&1)" ||
        die "${file#"$PREFIX"/} is not valid for this version: $out"
}
check_config "$PREFIX/config/gateway.yaml" "$PREFIX/etc/vctts.env" "$PREFIX/etc/gateway.env"
for engine in "${engines[@]}"; do
    check_config "$PREFIX/config/worker-$engine.yaml" "$PREFIX/etc/vctts.env"
done
say "checked config/gateway.yaml${engines[*]:+ and the worker configs} with vctts-server check-config"

# ---------------------------------------------------------- systemd units
units=()
if [ "$SYSTEMD" != none ]; then
    mkdir -p -- "$PREFIX/systemd"
    for tpl in "$BUNDLE"/share/systemd/*.service.in; do
        unit="$(basename -- "$tpl" .in)"
        sed -e "s#@PREFIX@#$PREFIX#g" -e "s#@USER@#$RUN_USER#g" -e "s#@GROUP@#$RUN_GROUP#g" "$tpl" \
            > "$PREFIX/systemd/.$unit.new"
        chmod 0644 "$PREFIX/systemd/.$unit.new"
        mv -f -- "$PREFIX/systemd/.$unit.new" "$PREFIX/systemd/$unit"
        units+=("$unit")
    done
    say "wrote systemd/${units[*]}"
    if [ "$SYSTEMD" = install ]; then
        for unit in "${units[@]}"; do
            install -m 0644 -- "$PREFIX/systemd/$unit" "/etc/systemd/system/$unit"
        done
        if have systemctl && [ -d /run/systemd/system ]; then
            systemctl daemon-reload
        fi
        say "installed the units into /etc/systemd/system"
    fi
fi

# -------------------------------------------------------------- ownership
if [ "$IS_ROOT" -eq 1 ] && [ "$RUN_USER" != root ]; then
    chown -R "$RUN_USER:$RUN_GROUP" "$PREFIX/data" "$PREFIX/logs"
    chown "$RUN_USER:$RUN_GROUP" "$PREFIX/etc/vctts.env" "$PREFIX/etc/gateway.env"
fi

# ----------------------------------------------------------- how to start
cat <<EOF

vctts $VERSION is installed in $PREFIX (engines: ${engines[*]:-none}).

One machine, everything in one process (gateway + engines), on 127.0.0.1:8000:
  $PREFIX/bin/vctts-env vctts-server standalone --config $PREFIX/config/gateway.yaml
EOF
if [ "${#units[@]}" -gt 0 ]; then
    if [ "$SYSTEMD" = install ]; then
        echo "  or as a service:  systemctl enable --now vctts-standalone"
    else
        echo "  or as a service:  sudo cp $PREFIX/systemd/*.service /etc/systemd/system/ && sudo systemctl daemon-reload"
        echo "                    sudo systemctl enable --now vctts-standalone"
    fi
fi
cat <<EOF

A gateway with workers (see docs/DEPLOYMENT.md for several machines):
  systemctl enable --now vctts-gateway
EOF
for engine in "${engines[@]}"; do
    echo "  systemctl enable --now vctts-worker@$engine      (config/worker-$engine.yaml)"
done
cat <<EOF

Speak a sentence once it is up:
  curl -sS -X POST http://127.0.0.1:8000/api/v3/synthesize -H 'Content-Type: application/json' \\
       -d '{"text": "Hello from vctts."}' -o hello.wav

Pages: http://127.0.0.1:8000/status, /admin, /playground.
EOF
if [ -n "$ADMIN_PASSWORD_NEW" ]; then
    echo "Admin login: user admin, password $ADMIN_PASSWORD_NEW (stored in $PREFIX/etc/gateway.env; change it there)."
fi
echo "Checks: $PREFIX/bin/vctts-env vctts engines; logs: journalctl -u 'vctts-*'."
