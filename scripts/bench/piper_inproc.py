"""In-process synthesis time of piper-tts: `PiperVoice.synthesize` on one text.

Loads the voice once, synthesizes the text once to warm up, then times RUNS
more calls (each consumes every sentence chunk the generator yields) and
prints one JSON line: {"audio_s": seconds of audio of one call,
"synth_s": [seconds per call], "rtf": total time / total audio,
"threads": intra-op threads, "onnxruntime": version}.

The counterpart of examples/bench_inproc.rs; scripts/bench.sh runs both,
alternating. Usage (with the venv's python that has piper-tts):
    python scripts/bench/piper_inproc.py MODEL.onnx TEXT_FILE THREADS RUNS
"""

import json
import sys
import time

import onnxruntime
from piper_threads import fix_threads


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    model, text_file, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    fix_threads(threads)
    from piper import PiperVoice  # after the patch, so the session gets the threads

    with open(text_file, encoding="utf-8") as f:
        text = f.read().strip()
    voice = PiperVoice.load(model)

    def speak() -> int:
        return sum(len(chunk.audio_float_array) for chunk in voice.synthesize(text))

    speak()  # warm-up
    times = []
    samples = 0
    for _ in range(runs):
        start = time.perf_counter()
        samples = speak()
        times.append(time.perf_counter() - start)
    audio_s = samples / voice.config.sample_rate
    print(
        json.dumps(
            {
                "audio_s": audio_s,
                "synth_s": times,
                "rtf": sum(times) / (audio_s * runs),
                "threads": threads,
                "onnxruntime": onnxruntime.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
