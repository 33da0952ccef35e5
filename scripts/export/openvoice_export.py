#!/usr/bin/env python3
"""Converts an upstream OpenVoice tone color converter to the ONNX layout vctts reads.

Input: an upstream converter folder, e.g. ``checkpoints_v2/converter`` of
OpenVoice v2, holding ``config.json`` and ``checkpoint.pth``.

Output (written atomically: a temporary folder renamed into place):

- ``tone_color_extract_model.onnx``: ``input`` f32 [1,T,513] (the linear
  spectrogram, frames first) -> ``tone`` f32 [1,256];
- ``tone_clone_model.onnx``: ``audio`` f32 [1,513,T], ``audio_length`` i64 [1],
  ``src_tone`` f32 [1,256,1], ``dest_tone`` f32 [1,256,1], ``tau`` f32 [1],
  ``noise`` f32 [1,C,T] -> ``wav`` f32 [1,1,N] at the config's rate;
- ``config.json``: the upstream config, copied.

The input names are those of the public season-studio export, which vctts also
reads unchanged. The one addition is ``noise``: upstream's posterior encoder
draws ``torch.randn_like`` inside the model; here the standard normal noise is
an input (C = the config's ``inter_channels``), so the caller decides it and a
seed gives the same audio every time. vctts detects the input by its name.

Needs Python 3.9+ with ``torch``, ``onnx`` and the upstream model code from
PyPI ``openvoice-cli==0.0.5`` (``pip install --no-deps openvoice-cli==0.0.5``;
its other dependencies are not needed for this). ``onnxruntime``, when
installed, is used to check the exported graphs against torch.

Usage (from the repository root):

    python3 scripts/export/openvoice_export.py checkpoints_v2/converter models/openvoice/converter

``--in-graph-noise`` writes the clone graph the way the public export has it
instead (no ``noise`` input; the noise drawn inside with ``RandomNormalLike``);
the test fixtures use it to stand in for that export.

Exit status: 0 on success, 2 on bad arguments or input, 3 when a Python
dependency is missing (the message names the pip command).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

EXTRACT_FILE = "tone_color_extract_model.onnx"
CLONE_FILE = "tone_clone_model.onnx"
OPSET = 17


def fail(code, message):
    print(f"openvoice_export: {message}", file=sys.stderr)
    sys.exit(code)


def import_deps():
    try:
        import torch  # noqa: F401
        import onnx  # noqa: F401
    except ImportError as e:
        fail(3, f"missing Python package ({e}); install with: pip install torch onnx")
    try:
        from openvoice_cli import models, utils  # noqa: F401
    except ImportError as e:
        fail(3, f"missing upstream model code ({e}); install with: pip install --no-deps openvoice-cli==0.0.5")


def build_model(config_path):
    """The upstream SynthesizerTrn of a converter config (no text encoder)."""
    from openvoice_cli import utils
    from openvoice_cli.models import SynthesizerTrn

    hps = utils.get_hparams_from_file(config_path)
    n_speakers = hps.data.n_speakers
    if n_speakers != 0:
        fail(2, f"{config_path}: data.n_speakers is {n_speakers}; a tone color converter has 0")
    model = SynthesizerTrn(
        len(getattr(hps, "symbols", [])),
        hps.data.filter_length // 2 + 1,
        n_speakers=n_speakers,
        **hps.model,
    )
    model.eval()
    return model, hps


def load_checkpoint(model, checkpoint_path):
    import torch

    state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    state = state.get("model", state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing:
        fail(2, f"{checkpoint_path}: missing weights {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if unexpected:
        print(f"openvoice_export: ignoring {len(unexpected)} unused weights", file=sys.stderr)


class _FixedNoise:
    """Replaces ``torch.randn_like`` while active: returns the given noise."""

    def __init__(self, noise):
        self.noise = noise

    def __enter__(self):
        import torch

        self.saved = torch.randn_like
        noise = self.noise

        def randn_like(t, *args, **kwargs):
            if tuple(t.shape) != tuple(noise.shape) and not torch.jit.is_tracing():
                raise ValueError(f"noise has shape {tuple(noise.shape)}, the model wants {tuple(t.shape)}")
            return noise.to(dtype=t.dtype)

        torch.randn_like = randn_like
        return self

    def __exit__(self, *exc):
        import torch

        torch.randn_like = self.saved
        return False


def fixed_noise(noise):
    """Context in which upstream's ``torch.randn_like`` returns ``noise``."""
    return _FixedNoise(noise)


def wrappers(model, in_graph_noise=False):
    import torch

    class Extract(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, spec_t):
            return self.m.ref_enc(spec_t)

    class Clone(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, audio, audio_length, src_tone, dest_tone, tau, noise):
            with fixed_noise(noise):
                wav = self.m.voice_conversion(audio, audio_length, src_tone, dest_tone, tau=tau)[0]
            return wav

    class PublicClone(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, audio, audio_length, src_tone, dest_tone, tau):
            return self.m.voice_conversion(audio, audio_length, src_tone, dest_tone, tau=tau)[0]

    return Extract(model), (PublicClone(model) if in_graph_noise else Clone(model))


def export(model, hps, out_dir, in_graph_noise=False):
    import torch

    bins = hps.data.filter_length // 2 + 1
    inter = hps.model.inter_channels
    extract, clone = wrappers(model, in_graph_noise)
    frames = 64
    spec = torch.rand(1, bins, frames) + 1e-3
    with torch.no_grad():
        torch.onnx.export(
            extract,
            (spec.transpose(1, 2),),
            os.path.join(out_dir, EXTRACT_FILE),
            input_names=["input"],
            output_names=["tone"],
            dynamic_axes={"input": {1: "frames"}},
            opset_version=OPSET,
            dynamo=False,
        )
        tone = torch.randn(1, model.ref_enc.proj.out_features, 1)
        if in_graph_noise:
            torch.onnx.export(
                clone,
                (spec, torch.tensor([frames], dtype=torch.int64), tone, tone * 0.5, torch.tensor([0.3])),
                os.path.join(out_dir, CLONE_FILE),
                input_names=["audio", "audio_length", "src_tone", "dest_tone", "tau"],
                output_names=["wav"],
                dynamic_axes={"audio": {2: "frames"}, "wav": {2: "samples"}},
                opset_version=OPSET,
                dynamo=False,
            )
            return
        torch.onnx.export(
            clone,
            (
                spec,
                torch.tensor([frames], dtype=torch.int64),
                tone,
                tone * 0.5,
                torch.tensor([0.3]),
                torch.randn(1, inter, frames),
            ),
            os.path.join(out_dir, CLONE_FILE),
            input_names=["audio", "audio_length", "src_tone", "dest_tone", "tau", "noise"],
            output_names=["wav"],
            dynamic_axes={"audio": {2: "frames"}, "noise": {2: "frames"}, "wav": {2: "samples"}},
            opset_version=OPSET,
            dynamo=False,
        )


def check(model, hps, out_dir, in_graph_noise=False):
    """Runs both graphs on a fresh input and compares them with torch."""
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        print("openvoice_export: onnxruntime not installed, graphs not checked", file=sys.stderr)
        return
    import torch

    bins = hps.data.filter_length // 2 + 1
    inter = hps.model.inter_channels
    gen = torch.Generator().manual_seed(7)
    frames = 97
    spec = torch.rand(1, bins, frames, generator=gen) + 1e-3
    noise = torch.randn(1, inter, frames, generator=gen)
    with torch.no_grad():
        tone = model.ref_enc(spec.transpose(1, 2))
        src = tone.unsqueeze(-1)
        dst = src.flip(1)
        with fixed_noise(noise):
            wav = model.voice_conversion(spec, torch.tensor([frames]), src, dst, tau=0.3)[0]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ex = ort.InferenceSession(os.path.join(out_dir, EXTRACT_FILE), so)
    cl = ort.InferenceSession(os.path.join(out_dir, CLONE_FILE), so)
    got_tone = ex.run(None, {"input": spec.transpose(1, 2).numpy()})[0]
    feed = {
        "audio": spec.numpy(),
        "audio_length": np.array([frames], dtype=np.int64),
        "src_tone": src.numpy(),
        "dest_tone": dst.numpy(),
        "tau": np.array([0.3], dtype=np.float32),
        "noise": noise.numpy(),
    }
    if in_graph_noise:
        # The graph draws its own noise: compare at tau 0, where it has no effect.
        feed["tau"] = np.array([0.0], dtype=np.float32)
        del feed["noise"]
        with torch.no_grad(), fixed_noise(noise):
            wav = model.voice_conversion(spec, torch.tensor([frames]), src, dst, tau=0.0)[0]
    got_wav = cl.run(None, feed)[0]
    tone_err = float(np.abs(got_tone - tone.numpy()).max())
    ref = wav.numpy()
    snr = 10 * np.log10(np.sum(ref**2) / max(np.sum((got_wav - ref) ** 2), 1e-30))
    print(f"openvoice_export: check: tone max error {tone_err:.2e}, waveform SNR {snr:.1f} dB")
    if tone_err > 1e-4 or snr < 60:
        fail(2, "exported graphs differ from the torch model")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("converter", help="upstream converter folder (config.json + checkpoint.pth)")
    p.add_argument("out", help="output folder (created; replaced if it exists)")
    p.add_argument(
        "--in-graph-noise",
        action="store_true",
        help="clone graph without the noise input (drawn inside, like the public export)",
    )
    args = p.parse_args()
    config = os.path.join(args.converter, "config.json")
    checkpoint = os.path.join(args.converter, "checkpoint.pth")
    for f in (config, checkpoint):
        if not os.path.isfile(f):
            fail(2, f"{f} not found (expected an upstream converter folder, e.g. checkpoints_v2/converter)")
    try:
        with open(config) as fh:
            json.load(fh)
    except (OSError, ValueError) as e:
        fail(2, f"{config}: {e}")
    import_deps()
    import torch

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    model, hps = build_model(config)
    load_checkpoint(model, checkpoint)
    out = os.path.abspath(args.out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".openvoice-export-", dir=parent)
    try:
        export(model, hps, tmp, args.in_graph_noise)
        shutil.copyfile(config, os.path.join(tmp, "config.json"))
        check(model, hps, tmp, args.in_graph_noise)
        if os.path.exists(out):
            old = out + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"openvoice_export: wrote {out}/{EXTRACT_FILE} and {out}/{CLONE_FILE}")


if __name__ == "__main__":
    main()
