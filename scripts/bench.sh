#!/usr/bin/env bash
# Side-by-side benchmark of vctts and piper-tts (not part of CI).
#
# Every figure of the performance targets, vctts against piper-tts on the
# same voice file (models/openvoice/base/en_US-joe-medium.onnx), the same
# texts and the same number of ONNX Runtime intra-op threads, the two tools
# alternating run by run, several repetitions, medians:
#   inproc  in-process synthesis time per second of audio (RTF) of a ~10 s
#           text: the embedding API (examples/bench_inproc.rs, one
#           lane: one text at a time) against `PiperVoice.synthesize`
#           (scripts/bench/piper_inproc.py);
#           each run loads once, warms up, times 5 calls;
#   synth   whole process `vctts synth` against the `piper` CLI at about
#           10, 32 and 129 s of audio: wall, user and system CPU, peak RSS;
#   http    throughput in audio-seconds per second at 1 and 8 concurrent
#           clients (--requests each run) of a release `vctts-server
#           standalone` against piper-tts's own server (piper.http_server),
#           both on 127.0.0.1, the same client (scripts/bench/load.py), each
#           server's user and system CPU time per audio-second served, and
#           its peak RSS (VmHWM) after all runs (c=8 included).
# It writes the table (figure, vctts, piper-tts, ratio, target, met) with
# the machine, date, commit, threads and versions to docs/PERFORMANCE.md,
# then appends docs/PERFORMANCE.notes.md (hand-written). Raw results of
# every run stay in .bench/.
#
# Needs: scripts/setup.sh done (the voice, espeak-ng data, ONNX Runtime),
# cargo, GNU time at /usr/bin/time, curl, python3. piper-tts lives in a venv
# (default .bench/venv); `--install` creates it with `piper-tts[http]` and
# the onnxruntime version vctts uses (.vctts/lib).
#
# Usage (from the repository root):
#   scripts/bench.sh [--install] [--venv DIR] [--reps N] [--threads N]
#                    [--requests N] [--only inproc,synth,http] [--no-build]
#                    [--note TEXT] [--out FILE]
# --threads: intra-op threads on both sides (default: the cores);
# --note adds a line to the report (e.g. "taken on a busy shared machine");
# --only runs some parts (the report then has only their rows).
# Run it on a quiet machine to refresh docs/PERFORMANCE.md.
set -euo pipefail

cd "$(dirname "$0")/.."
install=0
venv=.bench/venv
reps=5
threads=$(nproc)
requests=24
parts=inproc,synth,http
build=1
note=""
out=docs/PERFORMANCE.md
while [ $# -gt 0 ]; do
  case "$1" in
    --install) install=1 ;;
    --venv) venv=$2; shift ;;
    --reps) reps=$2; shift ;;
    --threads) threads=$2; shift ;;
    --requests) requests=$2; shift ;;
    --only) parts=$2; shift ;;
    --no-build) build=0 ;;
    --note) note=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
for n in "$reps" "$threads" "$requests"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "--reps, --threads and --requests take a positive number, got '$n'" >&2; exit 2; }
done
part() { [[ ",$parts," == *",$1,"* ]]; }
for p in ${parts//,/ }; do
  case "$p" in inproc|synth|http) ;; *) echo "--only takes inproc, synth, http; got '$p'" >&2; exit 2 ;; esac
done

model=models/openvoice/base/en_US-joe-medium.onnx
work=.bench
mkdir -p "$work"
[ -f "$model" ] || { echo "missing $model: run scripts/setup.sh" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is needed" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

# The ONNX Runtime vctts loads; piper-tts gets the same version.
ort_lib=$(find .vctts/lib -maxdepth 1 -name 'libonnxruntime.so.*.*.*' 2>/dev/null | sort | tail -n 1)
ort_version=${ort_lib##*libonnxruntime.so.}
if [ "$install" = 1 ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "piper-tts[http]" ${ort_version:+"onnxruntime==$ort_version"}
fi
py=$venv/bin/python
"$py" -c 'import piper' 2>/dev/null || { echo "piper-tts is not installed in $venv: run with --install (or --venv DIR)" >&2; exit 1; }
if part http; then
  "$py" -c 'import flask' 2>/dev/null || { echo "flask is missing in $venv (piper.http_server needs piper-tts[http]): run with --install" >&2; exit 1; }
fi

if [ "$build" = 1 ]; then
  # Two builds: the binaries as users build them, and the example (its
  # dev-dependencies change feature unification, so it gets its own copy).
  cargo build --release --workspace --bins
  cargo build --release --workspace --example bench_inproc
fi
target=${CARGO_TARGET_DIR:-target}
vctts=$target/release/vctts
server=$target/release/vctts-server
inproc=$target/release/examples/bench_inproc
for b in "$vctts" "$server" "$inproc"; do
  [ -x "$b" ] || { echo "no release binary at $b (run without --no-build)" >&2; exit 1; }
done

# ---------------------------------------------------------------- helpers

# The same English paragraph, repeated to the wanted length and cut after
# the last full stop (about 20 characters per second of speech).
paragraph="The old lighthouse keeper climbed the stairs every evening, counting each step aloud. \
From the top he could see the harbour lights, the fishing boats coming home, and the long road \
that wound along the cliffs. Nobody remembered when the lamp had last failed; he meant to keep it that way. "
make_text() { # chars file
  local text=""
  while [ ${#text} -lt "$1" ]; do text="$text$paragraph"; done
  printf '%s\n' "${text:0:$1}" | sed 's/\.[^.]*$/./' >"$2"
}
make_text 230 "$work/short.txt"
make_text 650 "$work/medium.txt"
make_text 2450 "$work/long.txt"
# HTTP requests cycle through these (one request per line, 2-10 s of audio).
cat >"$work/http_texts.txt" <<'EOF'
The harbour master checked the tide tables twice before the boats went out.
Rain moved in from the west, and the fishing fleet turned for home an hour early.
She counted the lamps along the pier, then wrote the number in the logbook as she did every night.
A ship's bell rang somewhere in the fog.
The ferry to the island runs three times a day in summer, but only once on Sundays, and never when the wind is from the north.
Gulls followed the trawler all the way past the breakwater, crying for scraps.
Nobody in the village could say who had painted the old boathouse blue, or when.
By midnight the storm had passed, the sky was clear, and the lighthouse beam swept slowly over a calm, silver sea.
EOF

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# range FORMAT: "min–max" of the numbers on stdin.
range() { sort -g | awk -v f="$1" 'NR == 1 {lo = $1} {hi = $1} END {printf f "–" f, lo, hi}'; }
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
duration() { python3 -c "import wave,sys; w=wave.open(sys.argv[1]); print(round(w.getnframes()/w.getframerate(),1))" "$1"; }

rows=""
met=0
checked=0
# row FIGURE VCTTS PIPER [TARGET [SPREAD]]: TARGET is "ratio<=X",
# "ratio>=X" (on vctts / piper-tts) or "vctts<=X" (on the vctts figure);
# empty: no target. SPREAD: each side's min–max over the repetitions.
row() {
  local figure=$1 v=$2 p=$3 target=${4:-} spread=${5:-—} ratio verdict="" shown="—"
  ratio=$(awk -v a="$v" -v b="$p" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }')
  if [ -n "$target" ]; then
    local on=${target%%[<>]=*} op limit x
    op=${target#"$on"}; limit=${op:2}; op=${op:0:2}
    # Judged on the unrounded ratio: 1.004 shows as 1.00 but misses <= 1.0.
    x=$(awk -v a="$v" -v b="$p" 'BEGIN{ if (b > 0) printf "%.6f", a/b; else print "-" }')
    [ "$on" = vctts ] && x=$v
    shown="$on $op $limit"; shown=${shown/<=/≤}; shown=${shown/>=/≥}
    checked=$((checked + 1))
    if awk -v x="$x" -v l="$limit" -v op="$op" 'BEGIN{ exit !(x != "-" && (op == "<=" ? x <= l : x >= l)) }'; then
      verdict="met"; met=$((met + 1))
    else
      verdict="**not met**"
    fi
  fi
  rows="$rows| $figure | $v | $p | $ratio | $shown | $verdict | $spread |
"
  printf '%-70s %10s %10s %6s %s\n' "$figure" "$v" "$p" "$ratio" "$verdict"
}

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------- 1. in-process synthesis
if part inproc; then
  echo "== in-process synthesis, $reps repetitions"
  mkdir -p "$work/data"; rm -f "$work"/inproc.*.json
  : >"$work/inproc.v"; : >"$work/inproc.p"
  for i in $(seq "$reps"); do
    "$inproc" "$work/short.txt" "$threads" 5 models "$work/data" >"$work/inproc.v.$i.json"
    "$py" scripts/bench/piper_inproc.py "$model" "$work/short.txt" "$threads" 5 >"$work/inproc.p.$i.json"
    jget "$work/inproc.v.$i.json" rtf >>"$work/inproc.v"
    jget "$work/inproc.p.$i.json" rtf >>"$work/inproc.p"
  done
  secs_v=$(jget "$work/inproc.v.1.json" audio_s); secs_p=$(jget "$work/inproc.p.1.json" audio_s)
  piper_ort=$(jget "$work/inproc.p.1.json" onnxruntime)
  row "in-process time per audio-second (RTF), $(printf %.1f "$secs_v") s of audio (piper: $(printf %.1f "$secs_p") s)" \
    "$(median <"$work/inproc.v" | xargs printf %.4f)" "$(median <"$work/inproc.p" | xargs printf %.4f)" "ratio<=1.02" \
    "$(range %.4f <"$work/inproc.v") / $(range %.4f <"$work/inproc.p")"
fi

# ------------------------------------------------------ 2. whole process
# One measured run: prints "wall user sys maxrss_kb".
measure() {
  local log=$work/time.log
  /usr/bin/time -o "$log" -f '%e %U %S %M' "$@" >/dev/null 2>"$work/run.err" ||
    { cat "$work/run.err" >&2; exit 1; }
  cat "$log"
}
run_vctts() { measure "$vctts" synth --text-file "$1" --threads "$threads" -o "$work/vctts.wav"; }
run_piper() { measure "$py" scripts/bench/piper_threads.py "$threads" piper -m "$model" -i "$1" -f "$work/piper.wav"; }

if part synth; then
  for name in short medium long; do
    echo "== whole process synth, $name text, $reps repetitions"
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
      # Column i of every run (peak RSS from KB to MB), then median and range.
      scale=1; fmt=%.2f; [ "$i" = 4 ] && { scale=1024; fmt=%.0f; }
      awk -v i="$i" -v s="$scale" '{print $i / s}' "$work/v.$name" >"$work/col.v"
      awk -v i="$i" -v s="$scale" '{print $i / s}' "$work/p.$name" >"$work/col.p"
      v=$(median <"$work/col.v" | xargs printf "$fmt"); p=$(median <"$work/col.p" | xargs printf "$fmt")
      target=""; [ "$i" = 1 ] && target="ratio<=1.0"
      row "whole process \`synth\`, ${secs_v} s of audio (piper: ${secs_p} s): $label" "$v" "$p" "$target" \
        "$(range "$fmt" <"$work/col.v") / $(range "$fmt" <"$work/col.p")"
    done
  done
fi

# ---------------------------------------------------------------- 3. HTTP
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_ready URL BODY PID LOG: until one synthesis succeeds (the engine is
# loaded); fails if the process exits or after 180 s.
wait_ready() {
  local i
  for i in $(seq 360); do
    if curl -sf -o /dev/null -H 'Content-Type: application/json' -d "$2" "$1"; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "the server exited; its log ($4):" >&2; tail -n 20 "$4" >&2; exit 1; }
    [ "$i" = 360 ] && { echo "no answer from $1 within 180 s; log: $4" >&2; exit 1; }
    sleep 0.5
  done
}
peak_mb() { awk '/^VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
# cpu_ticks PID: "user system" CPU time of a process so far, in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12, $13}'; }
# cpu_per_audio BEFORE AFTER AUDIO_S FIELD: CPU seconds per audio-second.
cpu_per_audio() {
  awk -v a="$1" -v b="$2" -v s="$3" -v f="$4" -v hz="$(getconf CLK_TCK)" \
    'BEGIN{ split(a, x, " "); split(b, y, " "); printf "%.4f", (y[f] - x[f]) / hz / s }'
}
sum_audio() { python3 -c 'import json,sys; print(sum(json.load(open(f))["audio_s"] for f in sys.argv[1:]))' "$@"; }

if part http; then
  echo "== HTTP throughput, $requests requests per run, $reps repetitions"
  rm -rf "$work/server-data"; rm -f "$work"/http.*.json
  cat >"$work/server.yaml" <<EOF
server: { host: 127.0.0.1, port: 0 }
limiter: { enabled: false }
default_engine: openvoice
engines:
  - type: openvoice
    model: { path: models, threads: $threads }
EOF
  "$server" standalone --config "$work/server.yaml" --models models --data "$work/server-data" \
    >"$work/vctts-server.out" 2>"$work/vctts-server.log" &
  vpid=$!; pids+=("$vpid")
  pport=$(free_port)
  "$py" scripts/bench/piper_threads.py "$threads" piper.http_server -m "$model" --host 127.0.0.1 --port "$pport" \
    >"$work/piper-server.log" 2>&1 &
  ppid=$!; pids+=("$ppid")
  for _ in $(seq 120); do
    grep -q 'listening on http://' "$work/vctts-server.out" && break
    kill -0 "$vpid" 2>/dev/null || { echo "vctts-server exited:" >&2; tail -n 20 "$work/vctts-server.log" >&2; exit 1; }
    sleep 0.5
  done
  vaddr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$work/vctts-server.out" | head -n 1)
  [ -n "$vaddr" ] || { echo "vctts-server did not listen within 60 s" >&2; exit 1; }
  vurl="http://$vaddr/api/v3/synthesize"; purl="http://127.0.0.1:$pport/synthesize"
  wait_ready "$vurl" '{"text": "Ready.", "format": "wav"}' "$vpid" "$work/vctts-server.log"
  wait_ready "$purl" '{"text": "Ready."}' "$ppid" "$work/piper-server.log"
  # Warm-up: a few requests each, not counted.
  python3 scripts/bench/load.py "$vurl" vctts "$work/http_texts.txt" 1 3 >/dev/null
  python3 scripts/bench/load.py "$purl" piper "$work/http_texts.txt" 1 3 >/dev/null
  for c in 1 8; do : >"$work/http.v.$c"; : >"$work/http.p.$c"; done
  vcpu0=$(cpu_ticks "$vpid"); pcpu0=$(cpu_ticks "$ppid")
  for i in $(seq "$reps"); do
    for c in 1 8; do
      sleep 1 # let the other server's spinning threads settle
      python3 scripts/bench/load.py "$vurl" vctts "$work/http_texts.txt" "$c" "$requests" >"$work/http.v.$c.$i.json"
      sleep 1
      python3 scripts/bench/load.py "$purl" piper "$work/http_texts.txt" "$c" "$requests" >"$work/http.p.$c.$i.json"
      jget "$work/http.v.$c.$i.json" throughput >>"$work/http.v.$c"
      jget "$work/http.p.$c.$i.json" throughput >>"$work/http.p.$c"
    done
  done
  vcpu1=$(cpu_ticks "$vpid"); pcpu1=$(cpu_ticks "$ppid")
  for c in 1 8; do
    target="ratio>=1.0"; [ "$c" = 8 ] && target="ratio>=1.15"
    row "HTTP throughput, c=$c, $requests requests: audio-seconds per second" \
      "$(median <"$work/http.v.$c" | xargs printf %.1f)" "$(median <"$work/http.p.$c" | xargs printf %.1f)" "$target" \
      "$(range %.1f <"$work/http.v.$c") / $(range %.1f <"$work/http.p.$c")"
  done
  vaudio=$(sum_audio "$work"/http.v.?.*.json); paudio=$(sum_audio "$work"/http.p.?.*.json)
  row "server user CPU seconds per audio-second, all HTTP runs" \
    "$(cpu_per_audio "$vcpu0" "$vcpu1" "$vaudio" 1)" "$(cpu_per_audio "$pcpu0" "$pcpu1" "$paudio" 1)"
  row "server system CPU seconds per audio-second, all HTTP runs" \
    "$(cpu_per_audio "$vcpu0" "$vcpu1" "$vaudio" 2)" "$(cpu_per_audio "$pcpu0" "$pcpu1" "$paudio" 2)"
  row "server peak RSS (VmHWM) after every HTTP run (c=8 included), MB" "$(peak_mb "$vpid")" "$(peak_mb "$ppid")" "vctts<=300"
  cleanup; pids=()
fi

# ---------------------------------------------------------------- report
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
piper_version=$("$venv/bin/pip" show piper-tts 2>/dev/null | awk '/^Version/ {print $2}')
piper_ort=${piper_ort:-$("$py" -c 'import onnxruntime; print(onnxruntime.__version__)')}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"
{
  echo "# Performance"
  echo
  echo "Written by \`scripts/bench.sh\` (rerun it to refresh this file; not part of CI):"
  echo "vctts against piper-tts $piper_version on the same voice file (\`en_US-joe-medium\`),"
  echo "the same texts and $threads ONNX Runtime intra-op threads on both sides, the two tools"
  echo "alternating run by run, median of $reps repetitions (each after a warm-up)."
  echo "Ratio = vctts / piper-tts: below 1 is better for vctts in times and memory,"
  echo "above 1 in throughput. A target is on the ratio, or on the vctts figure itself."
  echo
  echo "- In-process: the embedding API (\`Tts::speak\`, \`examples/bench_inproc.rs\`, the library's"
  echo "  default lanes: one per core, a text's sentences side by side) against \`PiperVoice.synthesize\`"
  echo "  (\`scripts/bench/piper_inproc.py\`); each run loads the voice, warms up and times 5 calls on"
  echo "  the ~10 s text."
  echo "- Whole process: release \`vctts synth --threads $threads\` against the \`piper\` CLI, writing a WAV file"
  echo "  (GNU time: wall, user, system, peak RSS)."
  echo "- HTTP: release \`vctts-server standalone\` (\`model.threads: $threads\`, limiter off, other settings"
  echo "  default) against piper-tts's own server (\`python -m piper.http_server\`, Flask's threaded server),"
  echo "  both on 127.0.0.1, the same load client (\`scripts/bench/load.py\`: $requests WAV requests"
  echo "  per run over 8 texts of 2-10 s, c clients at once); throughput = audio seconds"
  echo "  returned / wall time. CPU per audio-second = the server process's user or system CPU"
  echo "  time over the measured runs / the audio it returned in them (/proc/PID/stat)."
  echo "  Peak RSS = the server process's VmHWM after every run."
  echo "- Threads: vctts gets $threads (the engine fits threads × concurrent inferences to the cores);"
  echo "  piper-tts gets \`intra_op_num_threads = $threads\` on its session through"
  echo "  \`scripts/bench/piper_threads.py\` (piper-tts alone leaves ONNX Runtime's default, one per"
  echo "  physical core, and runs concurrent requests on one session)."
  echo
  echo "- Machine: $machine"
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit"
  echo "- ONNX Runtime: vctts ${ort_version:-unknown} (.vctts/lib), piper-tts $piper_ort (Python wheel)"
  echo "- Load average at the start / end: $load_start / $(cut -d' ' -f1-3 /proc/loadavg)"
  [ -n "$note" ] && echo "- Note: $note"
  if awk -v l="${load_start%% *}" -v c="$(nproc)" 'BEGIN{ exit !(l > c / 4) }'; then
    echo "- Warning: the load average was already ${load_start%% *} on $(nproc) cores at the start: other work"
    echo "  shared the CPUs, so the figures are noisy (the ratios of alternating runs less so)"
  fi
  echo "- Targets met: $met of $checked"
  echo
  echo "| figure | vctts | reference (piper-tts) | ratio | target | | range over the repetitions (vctts / piper-tts) |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
  if [ -f docs/PERFORMANCE.notes.md ]; then echo; cat docs/PERFORMANCE.notes.md; fi
} >"$out"
echo "targets met: $met of $checked"
echo "wrote $out"
