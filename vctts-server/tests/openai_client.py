"""The official `openai` Python client against a live vctts gateway.

Run by `vctts-server/tests/openai_client.rs` (which starts the server and
decodes what this script saves); needs the client that `scripts/setup.sh`
installs into `.vctts/openai-client` (pinned `openai` version).

Usage: python openai_client.py BASE_URL OUT_DIR TEXT SEED

For every `response_format` it saves the audio of a whole call
(`speech.create`), of a streamed call (`with_streaming_response`) and of an
SSE call (`stream_format="sse"`, base64 deltas joined), then writes
`OUT_DIR/manifest.json` describing each file (format, mode, content type,
headers, chunk and event counts). It checks on its own what only the client
sees: the exception classes and error bodies, the models and voices lists.
Any failed check raises, so the process exits non-zero.
"""

import base64
import json
import os
import sys

import openai
from openai import OpenAI

FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    base, out, text, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = OpenAI(base_url=base + "/v1", api_key="not-needed", max_retries=0)
    extra = {"seed": seed}
    files = []

    for fmt in FORMATS:
        # A whole call, as most applications make it.
        audio = client.audio.speech.create(
            model="tts-1", voice="alloy", input=text, response_format=fmt, extra_body=extra
        )
        name = f"whole.{fmt}"
        audio.write_to_file(os.path.join(out, name))
        files.append(
            {
                "file": name,
                "format": fmt,
                "mode": "whole",
                "content_type": audio.response.headers.get("content-type"),
            }
        )

        # A streamed call: bytes as the server sends them.
        with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="nova", input=text, response_format=fmt, extra_body=extra
        ) as res:
            chunks = 0
            data = bytearray()
            for piece in res.iter_bytes():
                chunks += 1
                data.extend(piece)
            name = f"stream.{fmt}"
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
            files.append(
                {
                    "file": name,
                    "format": fmt,
                    "mode": "stream",
                    "content_type": res.headers.get("content-type"),
                    "transfer_encoding": res.headers.get("transfer-encoding"),
                    "accel_buffering": res.headers.get("x-accel-buffering"),
                    "chunks": chunks,
                }
            )

        # Server-sent events: base64 deltas, then done.
        with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts",
            voice="alloy",
            input=text,
            response_format=fmt,
            stream_format="sse",
            extra_body=extra,
        ) as res:
            check(
                res.headers.get("content-type", "").startswith("text/event-stream"),
                f"sse {fmt}: content type {res.headers.get('content-type')}",
            )
            data = bytearray()
            deltas = 0
            done = 0
            for line in res.iter_lines():
                if not line.startswith("data: "):
                    check(line == "", f"sse {fmt}: unexpected line {line!r}")
                    continue
                event = json.loads(line[len("data: ") :])
                check(done == 0, f"sse {fmt}: event after done")
                if event["type"] == "speech.audio.delta":
                    deltas += 1
                    data.extend(base64.b64decode(event["audio"]))
                elif event["type"] == "speech.audio.done":
                    done += 1
                    check("usage" in event, f"sse {fmt}: done without usage")
                else:
                    raise AssertionError(f"sse {fmt}: unexpected event {event}")
            check(done == 1, f"sse {fmt}: {done} done events")
            name = f"sse.{fmt}"
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
            files.append({"file": name, "format": fmt, "mode": "sse", "deltas": deltas})

    # Errors in OpenAI's shape raise the SDK's usual classes.
    try:
        client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="ogg")
        raise AssertionError("an unknown response_format was accepted")
    except openai.BadRequestError as e:
        check(e.status_code == 400, f"bad format: status {e.status_code}")
        check(e.param == "response_format", f"bad format: param {e.param!r}")
        check(e.type == "invalid_request_error", f"bad format: type {e.type!r}")
        check(e.code == "invalid_input", f"bad format: code {e.code!r}")
        check("response_format" in e.message, f"bad format: message {e.message!r}")
    try:
        client.audio.speech.create(model="tts-1", voice="alloy", input=text, speed=9)
        raise AssertionError("speed 9 was accepted")
    except openai.BadRequestError as e:
        check(e.param == "speed", f"bad speed: param {e.param!r}")
    try:
        client.audio.speech.create(model="tts-1", voice="nobody-here", input=text)
        raise AssertionError("an unknown voice was accepted")
    except openai.NotFoundError as e:
        check(e.param == "voice", f"unknown voice: param {e.param!r}")
        check(e.code == "voice_not_found", f"unknown voice: code {e.code!r}")
    try:
        client.audio.speech.create(model="whisper-1", voice="alloy", input=text)
        raise AssertionError("an unknown model was accepted")
    except openai.BadRequestError as e:
        check(e.param == "model", f"unknown model: param {e.param!r}")

    # Models and voices.
    ids = [m.id for m in client.models.list()]
    for want in ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "openvoice"]:
        check(want in ids, f"models: {want} missing from {ids}")
    check(client.models.retrieve("tts-1").owned_by == "vctts", "models.retrieve(tts-1)")
    try:
        client.models.retrieve("whisper-1")
        raise AssertionError("an unknown model was found")
    except openai.NotFoundError:
        pass
    voices = client.get("/audio/voices", cast_to=object)
    voice_ids = [v["id"] for v in voices["voices"]]
    for want in ["alloy", "nova", "shimmer"]:
        check(want in voice_ids, f"voices: {want} missing from {voice_ids}")

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"openai_version": openai.__version__, "files": files}, f, indent=1)


if __name__ == "__main__":
    main()
