#!/usr/bin/env bash
# The project's test command (the README's second command; CI runs it).
# Formatting, lints, every test of the workspace, schemathesis against a live
# server, the examples, and the README's first command (which must produce a real, non-silent WAV).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace

step "schemathesis: the OpenAPI document against a live server"
scripts/schemathesis.sh

step "Kubernetes manifests: strict schema check against Kubernetes 1.30"
# kustomization.yaml is kustomize's file, not a Kubernetes object; its
# resource list and the shipped gateway.yaml/worker.yaml are checked by
# vctts-server/tests/tier.rs (kubernetes_*).
kv=.vctts/kubernetes-validate/bin/kubernetes-validate
[ -x "$kv" ] || { echo "kubernetes-validate is missing: run scripts/setup.sh" >&2; exit 1; }
find config/kubernetes -name '*.yaml' ! -name kustomization.yaml -print0 |
    sort -z | xargs -0 "$kv" --strict --quiet -k 1.30.0

step "examples"
cargo run -q --example custom_engine
# The embedding example clones a voice: it gets a models root with the base
# voice and the fixture tone color converter, and a reference spoken by espeak-ng.
ex=target/example
rm -rf "$ex" && mkdir -p "$ex/models/openvoice"
ln -s "$PWD/models/openvoice/base" "$ex/models/openvoice/base"
ln -s "$PWD/vctts-engines/tests/fixtures/graphs/openvoice/converter" "$ex/models/openvoice/converter"
if [ -d models/openvoice/espeak-ng-data ]; then
    ln -s "$PWD/models/openvoice/espeak-ng-data" "$ex/models/openvoice/espeak-ng-data"
fi
espeak-ng -w "$ex/reference.wav" "The north wind and the sun were disputing which was the stronger, when a traveler came along wrapped in a warm cloak."
VCTTS_MODELS="$ex/models" VCTTS_DATA="$ex/data" cargo run -q --example embed_synth -- "$ex/reference.wav" target/embed_synth.wav

step "offline bundle: build, install and synthesize in a network namespace without network"
tests/offline_bundle.sh

step "README first command: speak a sentence with the default voice"
out=target/readme-hello.wav
rm -f "$out"
cargo run -q -p vctts-cli -- synth --text "Hello from vctts. This is the default voice." -o "$out"
python3 scripts/check_wav.py "$out" --min-seconds 1.0
