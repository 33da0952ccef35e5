#!/usr/bin/env python3
"""Checks that a file is a decodable, non-silent 16-bit WAV of a plausible length.

Usage: check_wav.py FILE [--min-seconds S] [--max-seconds S]
Uses only the standard library so it runs on a fresh machine.
"""
import argparse
import array
import math
import sys
import wave


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--max-seconds", type=float, default=600.0)
    a = ap.parse_args()
    try:
        with wave.open(a.file, "rb") as w:
            rate, width, channels, n = w.getframerate(), w.getsampwidth(), w.getnchannels(), w.getnframes()
            frames = w.readframes(n)
    except (OSError, wave.Error, EOFError) as e:
        print(f"check_wav: {a.file}: not a readable WAV: {e}", file=sys.stderr)
        return 1
    if width != 2:
        print(f"check_wav: {a.file}: expected 16-bit samples, got {8 * width}-bit", file=sys.stderr)
        return 1
    samples = array.array("h", frames)
    seconds = len(samples) / channels / rate
    rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples))) / 32768.0
    print(f"check_wav: {a.file}: {seconds:.2f} s, {rate} Hz, {channels} ch, rms {rms:.4f}")
    if not (a.min_seconds <= seconds <= a.max_seconds):
        print(f"check_wav: duration {seconds:.2f} s outside [{a.min_seconds}, {a.max_seconds}]", file=sys.stderr)
        return 1
    if rms < 0.005:
        print("check_wav: the audio is silent", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
