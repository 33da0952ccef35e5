#!/usr/bin/env bash
# Side-by-side benchmark of vctts and piper-tts (not part of CI).
#
# Runs the release `vctts synth` and piper-tts's `piper` on the same texts
# (about 10 s, 32 s and 129 s of audio) with the same voice file
# (models/openvoice/base/en_US-joe-medium.onnx), alternating the two tools,
# several repetitions each, and writes docs/PERFORMANCE.md: median wall time,
# user and system CPU time and peak RSS of the whole process, the ratio
# vctts / piper-tts, the machine and the date.
#
# Needs: scripts/setup.sh done (the voice, espeak-ng data, ONNX Runtime),
# GNU time at /usr/bin/time, python3. piper-tts lives in a local venv
# (.bench/venv); `--install` creates it and installs piper-tts there.
#
# Usage (from the repository root):
#   scripts/bench.sh [--install] [--reps N] [--threads N] [--note TEXT] [--out FILE]
# --note adds a line to the report (e.g. "taken on a busy shared machine").
# Run it on a quiet machine to refresh docs/PERFORMANCE.md.
set -euo pipefail

cd "$(dirname "$0")/.."
install=0
reps=5
threads=$(nproc)
note=""
out=docs/PERFORMANCE.md
while [ $# -gt 0 ]; do
  case "$1" in
    --install) install=1 ;;
    --reps) reps=$2; shift ;;
    --threads) threads=$2; shift ;;
    --note) note=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

model=models/openvoice/base/en_US-joe-medium.onnx
work=.bench
venv=$work/venv
mkdir -p "$work"
[ -f "$model" ] || { echo "missing $model: run scripts/setup.sh" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is needed" >&2; exit 1; }

if [ "$install" = 1 ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet piper-tts
fi
[ -x "$venv/bin/piper" ] || { echo "piper-tts is not installed: run with --install" >&2; exit 1; }

cargo build --release --workspace --bins
target=${CARGO_TARGET_DIR:-target}
vctts=$target/release/vctts
[ -x "$vctts" ] || { echo "no release binary at $vctts" >&2; exit 1; }

# The same English paragraph, repeated to the wanted length (about 15
# characters per second of speech with this voice).
paragraph="The old lighthouse keeper climbed the stairs every evening, counting each step aloud. \
From the top he could see the harbour lights, the fishing boats coming home, and the long road \
that wound along the cliffs. Nobody remembered when the lamp had last failed; he meant to keep it that way. "
make_text() { # chars file
  local text=""
  while [ ${#text} -lt "$1" ]; do text="$text$paragraph"; done
  printf '%s\n' "${text:0:$1}" | sed 's/[^.]*$/./' >"$2"
}
make_text 150 "$work/short.txt"
make_text 480 "$work/medium.txt"
make_text 1930 "$work/long.txt"

# One measured run: prints "wall user sys maxrss_kb".
measure() {
  local log=$work/time.log
  /usr/bin/time -o "$log" -f '%e %U %S %M' "$@" >/dev/null 2>"$work/run.err" ||
    { cat "$work/run.err" >&2; exit 1; }
  cat "$log"
}
run_vctts() { measure "$vctts" synth --text-file "$1" --threads "$threads" -o "$work/vctts.wav"; }
run_piper() { measure sh -c "'$venv/bin/piper' -m '$model' -f '$work/piper.wav' <'$1'"; }
duration() { python3 -c "import wave,sys; w=wave.open(sys.argv[1]); print(round(w.getnframes()/w.getframerate(),1))" "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

rows=""
for name in short medium long; do
  file=$work/$name.txt
  : >"$work/v.$name"; : >"$work/p.$name"
  run_vctts "$file" >/dev/null; run_piper "$file" >/dev/null # warm the page cache
  for _ in $(seq "$reps"); do
    run_vctts "$file" >>"$work/v.$name"
    run_piper "$file" >>"$work/p.$name"
  done
  secs_v=$(duration "$work/vctts.wav"); secs_p=$(duration "$work/piper.wav")
  for col in 1:wall_s 2:user_s 3:sys_s 4:peak_rss_MB; do
    i=${col%%:*}; label=${col#*:}
    v=$(awk -v i="$i" '{print $i}' "$work/v.$name" | median)
    p=$(awk -v i="$i" '{print $i}' "$work/p.$name" | median)
    if [ "$i" = 4 ]; then v=$(awk -v x="$v" 'BEGIN{printf "%.0f", x/1024}'); p=$(awk -v x="$p" 'BEGIN{printf "%.0f", x/1024}'); fi
    ratio=$(awk -v a="$v" -v b="$p" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }')
    rows="$rows| whole process \`synth\`, ${secs_v} s of audio (piper: ${secs_p} s): $label | $v | $p | $ratio |
"
  done
done

machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
piper_version=$("$venv/bin/pip" show piper-tts 2>/dev/null | awk '/^Version/ {print $2}')
{
  echo "# Performance"
  echo
  echo "Written by \`scripts/bench.sh\` (rerun it to refresh this file; not part of CI)."
  echo "vctts (release \`vctts synth\`, \`--threads $threads\`) against piper-tts $piper_version (\`piper\`,"
  echo "ONNX Runtime's default threads), same voice file (\`en_US-joe-medium\`), same texts,"
  echo "runs alternating, median of $reps repetitions after one warm-up run each."
  echo "Ratio = vctts / piper-tts (below 1 is better for vctts)."
  echo
  echo "- Machine: $machine"
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  [ -n "$note" ] && echo "- Note: $note"
  echo
  echo "| figure | vctts | reference (piper-tts) | ratio |"
  echo "|---|---|---|---|"
  printf '%s' "$rows"
  if [ -f docs/PERFORMANCE.notes.md ]; then echo; cat docs/PERFORMANCE.notes.md; fi
} >"$out"
echo "wrote $out"
