"""HTTP load client for scripts/bench.sh: the same client for both servers.

Sends REQUESTS synthesis requests, CONCURRENCY at a time (one thread each,
plain urllib, a new connection per request), cycling through the lines of
TEXTS, and prints one JSON line: {"requests", "concurrency", "wall_s" (first
send to last reply), "audio_s" (seconds of audio in all replies),
"throughput" (audio_s / wall_s: audio-seconds per second), "latency_s"
(median per request)}. Any reply other than 200 with a WAV body fails the
run (exit 1) rather than counting as throughput.

STYLE picks the request body: `vctts` posts {"text", "format": "wav"} to
URL (/api/v3/synthesize), `piper` posts {"text"} (piper.http_server's
/synthesize). Only the standard library: run it with any python3.

Usage:
    python3 scripts/bench/load.py URL STYLE TEXTS CONCURRENCY REQUESTS
"""

import json
import statistics
import struct
import sys
import threading
import time
import urllib.request


def wav_seconds(body: bytes) -> float:
    """Seconds of audio in a WAV reply (data chunk size taken from the bytes
    received, so a streamed header with an unknown size still works)."""
    if len(body) < 12 or body[:4] != b"RIFF" or body[8:12] != b"WAVE":
        raise ValueError(f"not a WAV reply ({len(body)} bytes: {body[:80]!r})")
    pos, rate, block = 12, 0, 0
    while pos + 8 <= len(body):
        kind, size = body[pos : pos + 4], struct.unpack("<I", body[pos + 4 : pos + 8])[0]
        if kind == b"fmt ":
            channels, rate = struct.unpack("<HI", body[pos + 10 : pos + 16])
            bits = struct.unpack("<H", body[pos + 22 : pos + 24])[0]
            block = channels * bits // 8
        elif kind == b"data":
            if not rate or not block:
                raise ValueError("WAV data before its fmt chunk")
            data = min(size, len(body) - pos - 8)
            return data / block / rate
        pos += 8 + size + (size & 1)
    raise ValueError("WAV reply without a data chunk")


def main() -> None:
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    url, style, texts_file = sys.argv[1], sys.argv[2], sys.argv[3]
    concurrency, requests = int(sys.argv[4]), int(sys.argv[5])
    if style not in ("vctts", "piper"):
        sys.exit(f"STYLE must be vctts or piper, got {style!r}")
    with open(texts_file, encoding="utf-8") as f:
        texts = [line.strip() for line in f if line.strip()]
    if not texts or concurrency < 1 or requests < 1:
        sys.exit("need at least one text, one request and a concurrency of 1 or more")

    def body(text: str) -> bytes:
        fields = {"text": text, "format": "wav"} if style == "vctts" else {"text": text}
        return json.dumps(fields).encode()

    lock = threading.Lock()
    next_index = [0]
    audio = [0.0]
    latencies: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                i = next_index[0]
                if i >= requests or errors:
                    return
                next_index[0] += 1
            req = urllib.request.Request(
                url, data=body(texts[i % len(texts)]), headers={"Content-Type": "application/json"}
            )
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=600) as res:
                    reply = res.read()
                seconds = wav_seconds(reply)
            except Exception as e:  # an HTTP error, a refused connection, a bad body
                with lock:
                    errors.append(f"request {i}: {e}")
                return
            took = time.perf_counter() - start
            with lock:
                audio[0] += seconds
                latencies.append(took)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        sys.exit(f"{url}: {len(errors)} failed request(s); first: {errors[0]}")
    print(
        json.dumps(
            {
                "requests": requests,
                "concurrency": concurrency,
                "wall_s": wall,
                "audio_s": audio[0],
                "throughput": audio[0] / wall,
                "latency_s": statistics.median(latencies),
            }
        )
    )


if __name__ == "__main__":
    main()
