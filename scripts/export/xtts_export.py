#!/usr/bin/env python3
"""Converts a Coqui XTTS-v2 checkpoint folder into the ONNX model folder vctts loads.

Needs: Python 3.10+, torch, onnx and the PyPI package `coqui-tts==0.28.0`
(with `transformers>=4.57,<5`, `torchcodec`, `six`); for Japanese also
`unidic-lite==1.0.8`. Set-up, from the repo root:

    python3 -m venv .venv-xtts
    .venv-xtts/bin/pip install torch onnx coqui-tts==0.28.0 'transformers>=4.57,<5' torchcodec six unidic-lite==1.0.8
    .venv-xtts/bin/python scripts/export/xtts_export.py SRC_DIR models/xtts_v2

SRC_DIR holds what users download for XTTS-v2: `model.pth`, `config.json`,
`vocab.json` (optional: `mel_stats.pth` when the checkpoint lacks the
`mel_stats` buffer; `speakers_xtts.pth` is not used).

The output folder has the layout of the public export (pltobing/XTTSv2-Streaming-ONNX):

    metadata.json            sizes, special tokens, file names ("files")
    vocab.json               the BPE tokenizer, copied
    mel_stats.npy            [80] per-channel divisor of the conditioning log-mel
    conditioning_encoder.onnx  mel_spectrogram [B,80,T] -> [B,32,D]
    speaker_encoder.onnx     mel_spec [B,64,T] (pre-emphasised power mel) -> [B,E,1]
    gpt_model.onnx           inputs_embeds [B,S,D], attention_mask f32 [B,P+S],
                             past_key_i / past_value_i [B,H,P,D/H]
                             -> logits [B,S,A], hidden_states [B,S,D] (final_norm
                             of the GPT-2 output: the vocoder latent),
                             present_key_i / present_value_i [B,H,P+S,D/H]
    hifigan_vocoder.onnx     latents [1,T,D], speaker_embedding [1,E,1] -> waveform [1,1,N]
    embeddings/{text_embedding,text_pos_embedding,mel_embedding,mel_pos_embedding}.npy
    ja/unidic/               MeCab dictionary of `unidic-lite` (its `dicdir`), for
                             Japanese as Coqui reads it (cutlet + fugashi); copied
                             when the package is installed, else a note is printed

The GPT graph is written from an explicit GPT-2 forward over the checkpoint's
own weights (not the HF generate machinery), so prefill and decode are one
graph and the KV cache is plain tensors. The sizes of the HiFi-GAN and the
speaker encoder are read from the checkpoint's tensors, so smaller test models
(see scripts/fixtures/make_xtts_parity.py) export through the same code.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

OPSET = 17


def _layer_count(state: dict, prefix: str) -> int:
    idx = set()
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    for k in state:
        m = pat.match(k)
        if m:
            idx.add(int(m.group(1)))
    return max(idx) + 1 if idx else 0


def load_xtts(src: Path):
    """Builds the Coqui model described by SRC/config.json and loads SRC/model.pth.

    The HiFi-GAN generator and the speaker encoder are rebuilt with the sizes
    found in the checkpoint when they differ from Coqui's defaults.
    """
    from TTS.encoder.models.resnet import ResNetSpeakerEncoder
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts
    from TTS.vocoder.models.hifigan_generator import HifiganGenerator

    for name in ("model.pth", "config.json", "vocab.json"):
        if not (src / name).is_file():
            raise SystemExit(f"error: {src / name} is missing (an XTTS-v2 checkpoint folder has model.pth, config.json, vocab.json)")
    config = XttsConfig()
    config.load_json(str(src / "config.json"))
    model = Xtts.init_from_config(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(src / "vocab.json"))
    model.init_models()
    state = model.get_compatible_checkpoint_state_dict(src / "model.pth")
    # Checkpoints of v1 carry the inference copy of the GPT; drop it.
    state = {k: v for k, v in state.items() if not k.startswith("gpt.gpt_inference.")}

    dec_prefix = "hifigan_decoder.waveform_decoder."
    pre = state.get(dec_prefix + "conv_pre.weight")
    if pre is not None and pre.shape[0] != model.hifigan_decoder.waveform_decoder.conv_pre.weight.shape[0]:
        n_up = _layer_count(state, dec_prefix + "ups.")
        up_kernels = []
        for i in range(n_up):
            w = state.get(dec_prefix + f"ups.{i}.weight")
            if w is None:
                w = state[dec_prefix + f"ups.{i}.parametrizations.weight.original1"]
            up_kernels.append(int(w.shape[-1]))
        n_res = _layer_count(state, dec_prefix + "resblocks.") // max(n_up, 1)
        res_kernels = []
        for j in range(n_res):
            key = dec_prefix + f"resblocks.{j}.convs1.0."
            w = state.get(key + "weight")
            if w is None:
                w = state[key + "parametrizations.weight.original1"]
            res_kernels.append(int(w.shape[-1]))
        model.hifigan_decoder.waveform_decoder = HifiganGenerator(
            int(pre.shape[1]),
            1,
            "1",
            [[1, 3, 5]] * n_res,
            res_kernels,
            up_kernels,
            int(pre.shape[0]),
            [k // 2 for k in up_kernels],
            inference_padding=0,
            cond_channels=model.args.d_vector_dim,
            conv_pre_weight_norm=False,
            conv_post_weight_norm=False,
            conv_post_bias=False,
            cond_in_each_up_layer=model.args.cond_d_vector_in_each_upsampling_layer,
        )
    spk_prefix = "hifigan_decoder.speaker_encoder."
    c1 = state.get(spk_prefix + "conv1.weight")
    cur = model.hifigan_decoder.speaker_encoder
    if c1 is not None and (
        c1.shape[0] != cur.conv1.weight.shape[0]
        or _layer_count(state, spk_prefix + "layer1.") != len(cur.layer1)
    ):
        filters = [int(c1.shape[0])] + [
            int(state[spk_prefix + f"layer{i}.0.conv1.weight"].shape[0]) for i in (2, 3, 4)
        ]
        layers = [_layer_count(state, spk_prefix + f"layer{i}.") for i in (1, 2, 3, 4)]
        model.hifigan_decoder.speaker_encoder = ResNetSpeakerEncoder(
            input_dim=64,
            proj_dim=int(state[spk_prefix + "fc.weight"].shape[0]),
            layers=layers,
            num_filters=filters,
            log_input=True,
            use_torch_spec=True,
            audio_config=model.hifigan_decoder.speaker_encoder_audio_config,
        )
    if "mel_stats" not in state and (src / "mel_stats.pth").is_file():
        state["mel_stats"] = torch.load(src / "mel_stats.pth", map_location="cpu")
    # The inference wrapper shares the GPT's parameters under other names
    # (gpt.gpt_inference.*, gpt.gpt.wte = the mel embedding); checkpoints may
    # or may not carry those aliases.
    model.gpt.init_gpt_for_inference(kv_cache=True, use_deepspeed=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    alias = ("gpt.gpt_inference.", "gpt.gpt.wte.")
    missing = [k for k in missing if not k.startswith(alias)]
    unexpected = [k for k in unexpected if not k.startswith(alias)]
    if missing or unexpected:
        raise SystemExit(f"error: model.pth does not match config.json: missing {missing[:8]}, unexpected {unexpected[:8]}")
    model.eval()
    model.gpt.eval()
    model.hifigan_decoder.eval()
    return model


class CondEncoder(nn.Module):
    def __init__(self, gpt):
        super().__init__()
        self.gpt = gpt

    def forward(self, mel_spectrogram):
        return self.gpt.get_style_emb(mel_spectrogram, None).transpose(1, 2)


class SpeakerEncoder(nn.Module):
    """The H/ASP encoder from the power mel on (log, instance norm, network, L2)."""

    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, mel_spec):
        e = self.enc
        x = (mel_spec + 1e-6).log()
        x = e.instancenorm(x).unsqueeze(1)
        x = e.bn1(e.relu(e.conv1(x)))
        x = e.layer4(e.layer3(e.layer2(e.layer1(x))))
        x = x.reshape(x.size()[0], -1, x.size()[-1])
        w = e.attention(x)
        mu = torch.sum(x * w, dim=2)
        sg = torch.sqrt((torch.sum((x**2) * w, dim=2) - mu**2).clamp(min=1e-5))
        x = torch.cat((mu, sg), 1)
        x = e.fc(x.view(x.size()[0], -1))
        x = torch.nn.functional.normalize(x, p=2, dim=1)
        return x.unsqueeze(-1)


class GptStep(nn.Module):
    """One GPT-2 pass over new embeddings with an explicit KV cache."""

    def __init__(self, gpt):
        super().__init__()
        self.blocks = gpt.gpt.h
        self.ln_f = gpt.gpt.ln_f
        self.final_norm = gpt.final_norm
        self.mel_head = gpt.mel_head
        self.n_head = gpt.heads
        self.dim = gpt.model_dim

    def forward(self, inputs_embeds, attention_mask, *past):
        b, s, d = inputs_embeds.shape
        h = self.n_head
        hd = d // h
        past_len = past[0].shape[2]
        total = past_len + s
        q_pos = torch.arange(s, device=inputs_embeds.device) + past_len
        k_pos = torch.arange(total, device=inputs_embeds.device)
        causal = (k_pos[None, :] <= q_pos[:, None])[None, None]
        keep = causal & (attention_mask[:, None, None, :] > 0.5)
        bias = torch.where(keep, torch.zeros((), dtype=torch.float32), torch.full((), -1e9, dtype=torch.float32))
        x = inputs_embeds
        presents = []
        for i, blk in enumerate(self.blocks):
            a = blk.ln_1(x)
            qkv = blk.attn.c_attn(a)
            q, k, v = qkv.split(d, dim=2)
            q = q.reshape(b, s, h, hd).transpose(1, 2)
            k = torch.cat([past[2 * i], k.reshape(b, s, h, hd).transpose(1, 2)], dim=2)
            v = torch.cat([past[2 * i + 1], v.reshape(b, s, h, hd).transpose(1, 2)], dim=2)
            presents += [k, v]
            w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd) + bias
            w = torch.softmax(w, dim=-1)
            o = torch.matmul(w, v).transpose(1, 2).reshape(b, s, d)
            x = x + blk.attn.c_proj(o)
            x = x + blk.mlp(blk.ln_2(x))
        hidden = self.final_norm(self.ln_f(x))
        logits = self.mel_head(hidden)
        return (logits, hidden, *presents)


class Vocoder(nn.Module):
    def __init__(self, dec):
        super().__init__()
        self.dec = dec

    def forward(self, latents, speaker_embedding):
        return self.dec(latents, g=speaker_embedding).reshape(1, 1, -1)


def export(src: Path, out: Path) -> None:
    model = load_xtts(src)
    gpt = model.gpt
    try:
        model.hifigan_decoder.waveform_decoder.remove_weight_norm()
    except Exception:  # already removed or never applied
        pass
    out.mkdir(parents=True, exist_ok=True)
    (out / "embeddings").mkdir(exist_ok=True)
    d = gpt.model_dim
    n_layer = len(gpt.gpt.h)
    heads = gpt.heads
    files = {
        "conditioning_encoder": "conditioning_encoder.onnx",
        "speaker_encoder": "speaker_encoder.onnx",
        "gpt_model": "gpt_model.onnx",
        "hifigan_vocoder": "hifigan_vocoder.onnx",
    }
    kw = dict(opset_version=OPSET, do_constant_folding=True, dynamo=False)
    with torch.no_grad():
        torch.onnx.export(
            CondEncoder(gpt).eval(),
            (torch.randn(1, 80, 200),),
            str(out / files["conditioning_encoder"]),
            input_names=["mel_spectrogram"],
            output_names=["cond_latents"],
            dynamic_axes={"mel_spectrogram": {0: "batch", 2: "frames"}, "cond_latents": {0: "batch"}},
            **kw,
        )
        torch.onnx.export(
            SpeakerEncoder(model.hifigan_decoder.speaker_encoder).eval(),
            (torch.rand(1, 64, 300) + 0.01,),
            str(out / files["speaker_encoder"]),
            input_names=["mel_spec"],
            output_names=["speaker_embedding"],
            dynamic_axes={"mel_spec": {0: "batch", 2: "frames"}, "speaker_embedding": {0: "batch"}},
            **kw,
        )
        past = []
        names_in = ["inputs_embeds", "attention_mask"]
        names_out = ["logits", "hidden_states"]
        axes = {
            "inputs_embeds": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "total"},
            "logits": {0: "batch", 1: "seq"},
            "hidden_states": {0: "batch", 1: "seq"},
        }
        for i in range(n_layer):
            for kind in ("key", "value"):
                past.append(torch.randn(1, heads, 3, d // heads))
                names_in.append(f"past_{kind}_{i}")
                names_out.append(f"present_{kind}_{i}")
                axes[f"past_{kind}_{i}"] = {0: "batch", 2: "past"}
                axes[f"present_{kind}_{i}"] = {0: "batch", 2: "total"}
        torch.onnx.export(
            GptStep(gpt).eval(),
            (torch.randn(1, 2, d), torch.ones(1, 5), *past),
            str(out / files["gpt_model"]),
            input_names=names_in,
            output_names=names_out,
            dynamic_axes=axes,
            **kw,
        )
        torch.onnx.export(
            Vocoder(model.hifigan_decoder).eval(),
            (torch.randn(1, 20, d), torch.randn(1, model.args.d_vector_dim, 1)),
            str(out / files["hifigan_vocoder"]),
            input_names=["latents", "speaker_embedding"],
            output_names=["waveform"],
            dynamic_axes={"latents": {1: "frames"}, "waveform": {2: "samples"}},
            **kw,
        )
    tables = {
        "text_embedding": gpt.text_embedding.weight,
        "text_pos_embedding": gpt.text_pos_embedding.emb.weight,
        "mel_embedding": gpt.mel_embedding.weight,
        "mel_pos_embedding": gpt.mel_pos_embedding.emb.weight,
    }
    for name, t in tables.items():
        np.save(out / "embeddings" / f"{name}.npy", t.detach().cpu().numpy().astype(np.float32))
    np.save(out / "mel_stats.npy", model.mel_stats.detach().cpu().numpy().astype(np.float32))
    shutil.copyfile(src / "vocab.json", out / "vocab.json")
    a = model.args
    meta = {
        "format": "xtts-v2-onnx",
        "exporter": "vctts scripts/export/xtts_export.py",
        "files": files,
        "n_layer": n_layer,
        "embed_dim": d,
        "num_heads": heads,
        "head_dim": d // heads,
        "num_audio_tokens": gpt.num_audio_tokens,
        "start_audio_token": gpt.start_audio_token,
        "stop_audio_token": gpt.stop_audio_token,
        "start_text_token": gpt.start_text_token,
        "stop_text_token": gpt.stop_text_token,
        "number_text_tokens": gpt.number_text_tokens,
        "perceiver_output_len": 32,
        "max_text_tokens": a.gpt_max_text_tokens,
        "max_gen_mel_tokens": gpt.max_gen_mel_tokens,
        "max_text_positions": int(tables["text_pos_embedding"].shape[0]),
        "max_audio_positions": int(tables["mel_pos_embedding"].shape[0]),
        "mel_channels": 80,
        "speaker_mel_channels": 64,
        "speaker_embedding_dim": a.d_vector_dim,
        "code_stride_len": a.gpt_code_stride_len,
        "input_sample_rate": a.input_sample_rate,
        "output_sample_rate": a.output_sample_rate,
        "output_hop_length": a.output_hop_length,
        "speaker_sample_rate": 16000,
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


UNIDIC_FILES = ("sys.dic", "unk.dic", "matrix.bin", "char.bin", "dicrc", "version",
                "AUTHORS", "BSD", "COPYING", "GPL", "LGPL", "README.md")


def copy_unidic(out: Path) -> bool:
    """Copies unidic-lite's dictionary to out/ja/unidic (Japanese needs it)."""
    try:
        import unidic_lite
    except ImportError:
        print("note: unidic-lite is not installed; Japanese needs its dictionary in "
              f"{out}/ja/unidic (pip install unidic-lite==1.0.8 and import again)", file=sys.stderr)
        return False
    src = Path(unidic_lite.DICDIR)
    dest = out / "ja" / "unidic"
    dest.mkdir(parents=True, exist_ok=True)
    for name in UNIDIC_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dest / name)
    from importlib.metadata import version as dist_version

    version = dist_version("unidic-lite")
    print(f"copied the Japanese dictionary of unidic-lite {version} to {dest}")
    return True


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="Coqui XTTS-v2 checkpoint folder (model.pth, config.json, vocab.json)")
    p.add_argument("out", type=Path, help="output model folder (e.g. models/xtts_v2)")
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    export(args.src, args.out)
    copy_unidic(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
