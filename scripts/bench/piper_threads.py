"""Runs a piper-tts entry point with a fixed number of ONNX Runtime threads.

piper-tts creates its session with default options, so ONNX Runtime picks
its own intra-op thread count (one per physical core). For a side-by-side
benchmark both tools must use the same number of threads: this wrapper sets
`intra_op_num_threads` on every session piper creates, then runs the module
as `python -m MODULE ARGS...` would.

Usage (with the venv's python, from scripts/bench.sh):
    python scripts/bench/piper_threads.py THREADS MODULE [ARGS...]
e.g. `... 2 piper -m voice.onnx -f out.wav` or `... 2 piper.http_server -m voice.onnx --port N`.

Needs: piper-tts (and flask for piper.http_server: `piper-tts[http]`).
"""

import runpy
import sys

import onnxruntime


def fix_threads(threads: int) -> None:
    """Makes every later InferenceSession use `threads` intra-op threads."""
    base = onnxruntime.InferenceSession

    class Session(base):  # type: ignore[misc, valid-type]
        def __init__(self, path_or_bytes, sess_options=None, *args, **kwargs):
            if sess_options is None:
                sess_options = onnxruntime.SessionOptions()
            sess_options.intra_op_num_threads = threads
            super().__init__(path_or_bytes, sess_options, *args, **kwargs)

    onnxruntime.InferenceSession = Session


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    threads, module = int(sys.argv[1]), sys.argv[2]
    if threads < 1:
        sys.exit("THREADS must be at least 1")
    fix_threads(threads)
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
