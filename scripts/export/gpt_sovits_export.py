#!/usr/bin/env python3
"""Export a trained GPT-SoVITS v2 pair into a vctts model folder.

Needs: Python 3.10+, torch, onnx, numpy, transformers and genie-tts==2.0.2
(MIT; only its weight-free ONNX templates under Data/v2 are used). Set up:

    python3 -m venv .venv-gpt-sovits
    .venv-gpt-sovits/bin/pip install torch onnx numpy transformers genie-tts==2.0.2

Run (paths relative to wherever you keep your files):

    .venv-gpt-sovits/bin/python scripts/export/gpt_sovits_export.py \
        --gpt my-e15.ckpt --sovits my_e8_s200.pth \
        --hubert chinese-hubert-base --bert chinese-roberta-wwm-ext-large \
        --out models/gpt_sovits

What it writes (the graph contract the Rust engine loads; every size is in
metadata.json):

- ssl.onnx        audio16k f32 [1,N] -> ssl_content f32 [1,768,S]   (HuBERT, raw wave)
- vq_encode.onnx  ssl_content -> prompts i64 [1,P]                  (ssl_proj + codebook)
- bert.onnx       input_ids, attention_mask, token_type_ids i64 [1,L] -> bert_feature f32 [L-2,1024]
                  (hidden_states[-3] without CLS/SEP; the unused top layers are dropped)
- t2s_encoder.onnx ref_seq, text_seq i64 [1,*], ref_bert, text_bert f32 [*,1024] -> x f32 [1,R+N,512]
- t2s_prefill.onnx x, prompts -> logits f32 [1,1025], present_k_layer_i / present_v_layer_i f32 [R+N+P,1,512]
- t2s_step.onnx   token i64 [1,1], position i64 [1], past_k_layer_i / past_v_layer_i -> logits, presents
- vits.onnx       text_seq i64 [1,N], pred_semantic i64 [1,1,T], refer f32 [1,1025,F], noise f32 [1,192,L]
                  -> audio f32 [L*640] at 32 kHz; L = 2T at speed 1, int(2T / speed) + 1 otherwise
                  (upstream's speed: the latent is resized to the noise length, see add_speed)
- vocab.txt (the BERT vocabulary) and metadata.json.

The T2S and VITS graphs come from Genie-TTS's templates by graph surgery:
the sampler baked into the decoders (RandomNormalLike, top-k 15, penalty
1.35) is cut off and the logits exposed; positions are made PyTorch's
0-based ones (the templates count from 1); the step graph takes the new
token and its position instead of re-embedding the whole history; the
decoder keeps as many layers as the checkpoint has; VITS takes the
spectrogram and the noise as inputs instead of running the ONNX STFT and
RandomNormalLike, and resizes its latent to the noise length (upstream's
speed_factor). Weights are written in fp32 (Genie rounds them to fp16).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TEMPLATE_FILES = {
    "encoder": "Models/t2s_encoder_fp32.onnx",
    "first": "Models/t2s_first_stage_decoder_fp32.onnx",
    "stage": "Models/t2s_stage_decoder_fp32.onnx",
    "vits": "Models/vits_fp32.onnx",
    "t2s_keys": "Keys/t2s_onnx_keys.txt",
    "vits_keys": "Keys/vits_onnx_keys.txt",
}
TEMPLATE_LAYERS = 24
D_MODEL = 512
FORMAT_VERSION = 2  # 2: vits.onnx resizes its latent to the noise length (speed)


class ExportError(Exception):
    """A clear, user-facing export failure."""


# ---------------------------------------------------------------- loading


def genie_template_dir() -> Path:
    """Finds genie-tts's Data/v2 without importing the package (its import
    starts the application and asks to download models)."""
    import importlib.util

    spec = importlib.util.find_spec("genie_tts")
    if spec is None or spec.origin is None:
        raise ExportError("genie-tts==2.0.2 is not installed (pip install genie-tts==2.0.2)")
    return Path(spec.origin).parent / "Data" / "v2"


def load_gpt(path: Path) -> dict:
    import torch

    data = torch.load(str(path), map_location="cpu", weights_only=True)
    if "weight" not in data:
        raise ExportError(f"{path}: not a GPT-SoVITS GPT checkpoint (no 'weight' entry)")
    return data


def load_sovits(path: Path) -> dict:
    """SoVITS .pth files of v2 may start with a 2-byte version tag instead
    of the zip magic "PK"; torch.load needs the magic back."""
    import torch

    raw = path.read_bytes()
    if raw[:2] != b"PK":
        raw = b"PK" + raw[2:]
    data = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False)
    if "weight" not in data:
        raise ExportError(f"{path}: not a GPT-SoVITS SoVITS checkpoint (no 'weight' entry)")
    return data


def to_np(t) -> np.ndarray:
    import torch

    return t.detach().to(torch.float32).cpu().numpy()


# ---------------------------------------------------------------- graph helpers


def prune(model: onnx.ModelProto) -> None:
    """Removes nodes, initializers and value_info no graph output needs."""
    g = model.graph
    needed = {o.name for o in g.output}
    keep = []
    for node in reversed(list(g.node)):
        if any(o in needed for o in node.output if o):
            keep.append(node)
            needed.update(i for i in node.input if i)
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    for sub in a.g.node:
                        needed.update(i for i in sub.input if i)
    keep.reverse()
    del g.node[:]
    g.node.extend(keep)
    inits = [i for i in g.initializer if i.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)
    inputs = [i for i in g.input if i.name in needed]
    del g.input[:]
    g.input.extend(inputs)
    del g.value_info[:]


def rename_uses(model: onnx.ModelProto, old: str, new: str) -> int:
    n = 0
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            if name == old:
                node.input[k] = new
                n += 1
    if n == 0:
        raise ExportError(f"template changed: tensor {old} has no consumer")
    return n


def node_by_output(model: onnx.ModelProto, name: str):
    for node in model.graph.node:
        if name in node.output:
            return node
    raise ExportError(f"template changed: no node makes {name}")


def const_value(model: onnx.ModelProto, name: str) -> np.ndarray:
    node = node_by_output(model, name)
    if node.op_type != "Constant":
        raise ExportError(f"template changed: {name} is not a constant")
    return numpy_helper.to_array(node.attribute[0].t)


def set_exclusive(model: onnx.ModelProto, cumsum_output: str) -> None:
    """The templates count positions 1..N (an inclusive CumSum of ones);
    PyTorch counts 0..N-1, so the CumSum becomes exclusive."""
    node = node_by_output(model, cumsum_output)
    if node.op_type != "CumSum":
        raise ExportError(f"template changed: {cumsum_output} is {node.op_type}")
    for a in node.attribute:
        if a.name == "exclusive":
            a.i = 1
            return
    node.attribute.append(helper.make_attribute("exclusive", 1))


def tensor_input(name: str, elem: int, dims: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, dims)


def set_outputs(model: onnx.ModelProto, outs: list) -> None:
    del model.graph.output[:]
    model.graph.output.extend(outs)


def cut_layers(model: onnx.ModelProto, n_layer: int) -> None:
    """Keeps decoder layers 0..n_layer-1 of the 24 in the template."""
    if n_layer == TEMPLATE_LAYERS:
        return
    if not 1 <= n_layer < TEMPLATE_LAYERS:
        raise ExportError(f"n_layer {n_layer} is outside 1..{TEMPLATE_LAYERS}")
    last = f"/transformer_encoder/layers.{TEMPLATE_LAYERS - 1}/norm2/LayerNormalization_output_0"
    keep = f"/transformer_encoder/layers.{n_layer - 1}/norm2/LayerNormalization_output_0"
    node_by_output(model, keep)
    # Only the final hidden-state Gather reads the last layer's output; the
    # dropped layers and their caches go when the graph is pruned.
    rename_uses(model, last, keep)


def weights_to_bin(
    models: list,
    weights: dict,
    bin_path: Path,
) -> dict:
    """Writes every initializer of `models` found in `weights` (name ->
    array, shape-checked against the template) into one fp32 .bin and points
    the initializers at it. Returns name -> (offset, length)."""
    index: dict = {}
    with open(bin_path, "wb") as f:
        for model in models:
            for init in model.graph.initializer:
                if init.name not in weights:
                    continue
                arr = np.ascontiguousarray(weights[init.name], dtype=np.float32)
                want = tuple(init.dims)
                if arr.shape != want:
                    raise ExportError(
                        f"tensor {init.name}: the checkpoint has shape {arr.shape}, the graph needs {want}"
                    )
                if init.data_type != TensorProto.FLOAT:
                    raise ExportError(f"tensor {init.name}: template type {init.data_type} is not float")
                if init.name not in index:
                    off = f.tell()
                    data = arr.tobytes()
                    f.write(data)
                    index[init.name] = (off, len(data))
                off, length = index[init.name]
                init.ClearField("raw_data")
                del init.float_data[:]
                init.data_location = TensorProto.EXTERNAL
                del init.external_data[:]
                for k, v in (("location", bin_path.name), ("offset", str(off)), ("length", str(length))):
                    e = init.external_data.add()
                    e.key = k
                    e.value = v
    for model in models:
        for init in model.graph.initializer:
            if init.data_location == TensorProto.EXTERNAL and init.name not in index:
                raise ExportError(f"tensor {init.name}: no weight for it in the checkpoint")
    return index


# ---------------------------------------------------------------- graphs


def build_encoders(tdir: Path):
    base = onnx.load(str(tdir / TEMPLATE_FILES["encoder"]), load_external_data=False)

    vq = onnx.ModelProto()
    vq.CopyFrom(base)
    set_outputs(vq, [tensor_input("prompts", TensorProto.INT64, [1, "prompt_len"])])
    prune(vq)

    enc = onnx.ModelProto()
    enc.CopyFrom(base)
    set_encoder_positions(enc)
    set_outputs(enc, [tensor_input("x", TensorProto.FLOAT, [1, "text_len", D_MODEL])])
    prune(enc)
    return vq, enc


def set_encoder_positions(enc: onnx.ModelProto) -> None:
    set_exclusive(enc, "/encoder/ar_text_position/CumSum_output_0")


def layer_outputs(n_layer: int, prefix: str) -> list:
    out = []
    for i in range(n_layer):
        for kv in ("k", "v"):
            out.append(tensor_input(f"{prefix}_{kv}_layer_{i}", TensorProto.FLOAT, ["kv_len", 1, D_MODEL]))
    return out


def build_prefill(tdir: Path, n_layer: int) -> onnx.ModelProto:
    m = onnx.load(str(tdir / TEMPLATE_FILES["first"]), load_external_data=False)
    set_exclusive(m, "/ar_audio_position/CumSum_output_0")
    cut_layers(m, n_layer)
    m.graph.node.append(helper.make_node("Identity", ["/ar_predict_layer/MatMul_output_0"], ["logits"]))
    set_outputs(
        m,
        [tensor_input("logits", TensorProto.FLOAT, [1, "vocab"])] + layer_outputs(n_layer, "present"),
    )
    prune(m)
    return m


def build_step(tdir: Path, n_layer: int) -> onnx.ModelProto:
    m = onnx.load(str(tdir / TEMPLATE_FILES["stage"]), load_external_data=False)
    div_term = const_value(m, "/ar_audio_position/Constant_1_output_0").astype(np.float32)
    cut_layers(m, n_layer)
    g = m.graph
    # New front: the embedding of one token plus its sine position.
    g.initializer.append(numpy_helper.from_array(div_term.reshape(1, -1), "vctts.div_term"))
    g.initializer.append(numpy_helper.from_array(np.array([1, 1, D_MODEL], np.int64), "vctts.shape_1_1_d"))
    g.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "vctts.axis1"))
    g.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), "vctts.axis_last"))
    nodes = [
        helper.make_node("Gather", ["ar_audio_embedding.word_embeddings.weight", "token"], ["vctts.tok_emb"]),
        helper.make_node("Cast", ["position"], ["vctts.pos_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["vctts.pos_f", "vctts.axis1"], ["vctts.pos_col"]),
        helper.make_node("Mul", ["vctts.pos_col", "vctts.div_term"], ["vctts.angle"]),
        helper.make_node("Sin", ["vctts.angle"], ["vctts.sin"]),
        helper.make_node("Cos", ["vctts.angle"], ["vctts.cos"]),
        helper.make_node("Unsqueeze", ["vctts.sin", "vctts.axis_last"], ["vctts.sin3"]),
        helper.make_node("Unsqueeze", ["vctts.cos", "vctts.axis_last"], ["vctts.cos3"]),
        helper.make_node("Concat", ["vctts.sin3", "vctts.cos3"], ["vctts.sincos"], axis=-1),
        helper.make_node("Reshape", ["vctts.sincos", "vctts.shape_1_1_d"], ["vctts.pe"]),
        helper.make_node("Mul", ["ar_audio_position.alpha", "vctts.pe"], ["vctts.alpha_pe"]),
        helper.make_node("Add", ["vctts.tok_emb", "vctts.alpha_pe"], ["vctts.xy_pos"]),
    ]
    rename_uses(m, "/Slice_1_output_0", "vctts.xy_pos")
    for k, n in enumerate(nodes):
        g.node.insert(k, n)
    g.node.append(helper.make_node("Identity", ["/ar_predict_layer/MatMul_output_0"], ["logits"]))
    keep_inputs = [
        tensor_input("token", TensorProto.INT64, [1, 1]),
        tensor_input("position", TensorProto.INT64, [1]),
    ] + layer_outputs(n_layer, "past")
    del g.input[:]
    g.input.extend(keep_inputs)
    set_outputs(
        m,
        [tensor_input("logits", TensorProto.FLOAT, [1, "vocab"])] + layer_outputs(n_layer, "present"),
    )
    prune(m)
    return m


ENCODER2_OUT = "/vq_model/enc_p/encoder2/Mul_1_output_0"
PRIOR_PROJ = "/vq_model/enc_p/proj/Conv"
FRAME_MASK = "/vq_model/enc_p/ConstantOfShape_output_0"


def add_speed(m: onnx.ModelProto) -> None:
    """Upstream's `speed` (TextEncoder.forward in SynthesizerTrn.decode):
    when speed != 1 the encoder2 output `y` [1,192,T] is linearly
    interpolated (align_corners=False) to `int(T / speed) + 1` frames before
    the prior projection, and everything after it (prior, flow, decoder)
    runs on that length with an all-ones mask. Here the target length is
    the length of the `noise` input: the caller passes `2T` frames of noise
    at speed 1 (the resize is then the identity) or `int(2T / speed) + 1`.
    The template's frame mask is all ones for batch 1, so its later uses
    become ones of the new length."""
    g = m.graph
    nodes = list(g.node)
    proj = [k for k, n in enumerate(nodes) if n.name == PRIOR_PROJ]
    if len(proj) != 1 or nodes[proj[0]].input[0] != ENCODER2_OUT:
        raise ExportError(f"template changed: {PRIOR_PROJ} does not read {ENCODER2_OUT}")
    cut = proj[0]
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array([0], np.int64), "vctts.speed.i0"),
            numpy_helper.from_array(np.array([2], np.int64), "vctts.speed.i2"),
            numpy_helper.from_array(np.array([3], np.int64), "vctts.speed.i3"),
            numpy_helper.from_array(np.array([1, 1], np.int64), "vctts.speed.ones2"),
        ]
    )
    new = [
        helper.make_node("Shape", ["noise"], ["vctts.speed.noise_shape"]),
        helper.make_node(
            "Slice", ["vctts.speed.noise_shape", "vctts.speed.i2", "vctts.speed.i3"], ["vctts.speed.frames"]
        ),
        helper.make_node("Shape", [ENCODER2_OUT], ["vctts.speed.y_shape"]),
        helper.make_node("Slice", ["vctts.speed.y_shape", "vctts.speed.i0", "vctts.speed.i2"], ["vctts.speed.nc"]),
        helper.make_node("Concat", ["vctts.speed.nc", "vctts.speed.frames"], ["vctts.speed.sizes"], axis=0),
        helper.make_node(
            "Resize",
            [ENCODER2_OUT, "", "", "vctts.speed.sizes"],
            ["vctts.speed.y"],
            mode="linear",
            coordinate_transformation_mode="pytorch_half_pixel",
        ),
        helper.make_node("Concat", ["vctts.speed.ones2", "vctts.speed.frames"], ["vctts.speed.mask_shape"], axis=0),
        helper.make_node(
            "ConstantOfShape",
            ["vctts.speed.mask_shape"],
            ["vctts.speed.mask"],
            value=numpy_helper.from_array(np.array([1.0], np.float32)),
        ),
    ]
    n_mask = 0
    for node in nodes[cut:]:
        for k, name in enumerate(node.input):
            if name == FRAME_MASK:
                node.input[k] = "vctts.speed.mask"
                n_mask += 1
    if n_mask == 0:
        raise ExportError(f"template changed: {FRAME_MASK} is not used after {PRIOR_PROJ}")
    nodes[cut].input[0] = "vctts.speed.y"
    for k, n in enumerate(new):
        g.node.insert(cut + k, n)


def build_vits(tdir: Path, reference: bool = False) -> onnx.ModelProto:
    """`reference=True` keeps the template's own STFT on raw 32 kHz audio and
    only turns its RandomNormalLike into a `noise` input (for fixtures)."""
    m = onnx.load(str(tdir / TEMPLATE_FILES["vits"]), load_external_data=False)
    g = m.graph
    rename_uses(m, "/vq_model/RandomNormalLike_output_0", "noise")
    inputs = [i for i in g.input if i.name in ("text_seq", "pred_semantic")]
    if not reference:
        rename_uses(m, "/Sqrt_output_0", "refer")
        inputs.append(tensor_input("refer", TensorProto.FLOAT, [1, 1025, "spec_frames"]))
        add_speed(m)
    else:
        inputs += [i for i in g.input if i.name == "ref_audio"]
    inputs.append(tensor_input("noise", TensorProto.FLOAT, [1, 192, "frames"]))
    del g.input[:]
    g.input.extend(inputs)
    set_outputs(m, [tensor_input("audio", TensorProto.FLOAT, ["samples"])])
    prune(m)
    return m


# ---------------------------------------------------------------- weights


def t2s_weights(ckpt: dict, keys: list) -> dict:
    sd = ckpt["weight"]
    out = {}
    for key in keys:
        src = "model." + key.replace("transformer_encoder", "h")
        if src in sd:
            out[key] = to_np(sd[src])
    return out


def encoder_weights(ckpt: dict, sovits: dict) -> dict:
    g, s = ckpt["weight"], sovits["weight"]
    out = {}
    for name in (
        "ar_text_embedding.word_embeddings.weight",
        "bert_proj.weight",
        "bert_proj.bias",
        "ar_text_position.alpha",
    ):
        if "model." + name not in g:
            raise ExportError(f"GPT checkpoint: key model.{name} is missing")
        out["encoder." + name] = to_np(g["model." + name])
    for name in ("ssl_proj.weight", "ssl_proj.bias", "quantizer.vq.layers.0._codebook.embed"):
        if name not in s:
            raise ExportError(f"SoVITS checkpoint: key {name} is missing")
        out["vits." + name] = to_np(s[name])
    return out


def vits_weights(sovits: dict, keys: list) -> dict:
    sd = sovits["weight"]
    out = {}
    for key in keys:
        src = key[len("vq_model."):] if key.startswith("vq_model.") else key
        if src not in sd:
            raise ExportError(f"SoVITS checkpoint: key {src} is missing")
        out[key] = to_np(sd[src])
    return out


def n_layer_of(ckpt: dict) -> int:
    sd = ckpt["weight"]
    n = 0
    while f"model.h.layers.{n}.self_attn.in_proj_weight" in sd:
        n += 1
    cfg = (ckpt.get("config") or {}).get("model") or {}
    if cfg.get("n_layer") not in (None, n):
        raise ExportError(f"GPT checkpoint: config says n_layer {cfg.get('n_layer')} but has {n} layers")
    if cfg.get("hidden_dim", D_MODEL) != D_MODEL or cfg.get("head", 16) != 16:
        raise ExportError("GPT checkpoint: only hidden_dim 512 with 16 heads (GPT-SoVITS v2) is supported")
    if n == 0:
        raise ExportError("GPT checkpoint: no transformer layers found")
    return n


def check_v2(sovits: dict) -> None:
    emb = sovits["weight"].get("enc_p.text_embedding.weight")
    if emb is None:
        raise ExportError("SoVITS checkpoint: enc_p.text_embedding.weight is missing")
    if emb.shape[0] != 732:
        raise ExportError(
            f"SoVITS checkpoint has {emb.shape[0]} phone symbols; only v2 (732) is supported "
            "(v1 has 322; v3/v4/v2Pro need other graphs)"
        )
    if "sv_emb.weight" in sovits["weight"] or any(k.startswith("ge_to512") for k in sovits["weight"]):
        raise ExportError("SoVITS checkpoint is v2Pro/v2ProPlus; only v2 is supported")


# ---------------------------------------------------------------- HF models


def export_hubert(src, out: Path, opset: int = 17) -> dict:
    import torch
    from transformers import HubertModel

    model = src if not isinstance(src, (str, Path)) else HubertModel.from_pretrained(str(src))
    model.eval()
    if model.config.hidden_size != 768:
        raise ExportError(f"HuBERT hidden size {model.config.hidden_size}; chinese-hubert-base has 768")

    class Ssl(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, audio16k):
            return self.m(audio16k).last_hidden_state.transpose(1, 2)

    x = torch.zeros(1, 16000 * 2)
    torch.onnx.export(
        Ssl(model),
        (x,),
        str(out),
        input_names=["audio16k"],
        output_names=["ssl_content"],
        dynamic_axes={"audio16k": {1: "samples"}, "ssl_content": {2: "frames"}},
        opset_version=opset,
        dynamo=False,
    )
    return {"hidden": 768}


def export_bert(src, out: Path, opset: int = 17) -> dict:
    import torch
    from transformers import BertModel

    model = src if not isinstance(src, (str, Path)) else BertModel.from_pretrained(str(src))
    model.eval()
    n = model.config.num_hidden_layers
    if n < 2:
        raise ExportError("BERT needs at least 2 layers (hidden_states[-3] is used)")
    if model.config.hidden_size != 1024:
        raise ExportError(f"BERT hidden size {model.config.hidden_size}; bert_proj needs 1024")
    # hidden_states[-3] is the output of layer n-2: the top two layers are
    # never used, so they are not exported.
    model.encoder.layer = model.encoder.layer[: n - 2]

    class Bert(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return h.last_hidden_state[0, 1:-1]

    ids = torch.tensor([[0, 1, 1, 0]], dtype=torch.long)
    torch.onnx.export(
        Bert(model),
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(out),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["bert_feature"],
        dynamic_axes={
            "input_ids": {1: "tokens"},
            "attention_mask": {1: "tokens"},
            "token_type_ids": {1: "tokens"},
            "bert_feature": {0: "chars"},
        },
        opset_version=opset,
        dynamo=False,
    )
    return {"hidden": 1024, "max_positions": int(model.config.max_position_embeddings)}


def save(model: onnx.ModelProto, path: Path) -> None:
    onnx.save(model, str(path))


# ---------------------------------------------------------------- main


def export(gpt: Path, sovits_path: Path, hubert, bert, out: Path, templates: Path | None = None) -> dict:
    tdir = templates or genie_template_dir()
    for k, rel in TEMPLATE_FILES.items():
        if not (tdir / rel).is_file():
            raise ExportError(f"template {tdir / rel} is missing (genie-tts==2.0.2 expected)")
    out.mkdir(parents=True, exist_ok=True)
    ckpt = load_gpt(gpt)
    sov = load_sovits(sovits_path)
    check_v2(sov)
    n_layer = n_layer_of(ckpt)

    vq, enc = build_encoders(tdir)
    enc_w = encoder_weights(ckpt, sov)
    weights_to_bin([vq, enc], enc_w, out / "t2s_encoder.bin")
    save(vq, out / "vq_encode.onnx")
    save(enc, out / "t2s_encoder.onnx")

    keys = [k.strip() for k in (tdir / TEMPLATE_FILES["t2s_keys"]).read_text().splitlines() if k.strip()]
    prefill = build_prefill(tdir, n_layer)
    step = build_step(tdir, n_layer)
    weights_to_bin([prefill, step], t2s_weights(ckpt, keys), out / "t2s_decoder.bin")
    save(prefill, out / "t2s_prefill.onnx")
    save(step, out / "t2s_step.onnx")

    vkeys = [k.strip() for k in (tdir / TEMPLATE_FILES["vits_keys"]).read_text().splitlines() if k.strip()]
    vits = build_vits(tdir)
    weights_to_bin([vits], vits_weights(sov, vkeys), out / "vits.bin")
    save(vits, out / "vits.onnx")

    bert_info = None
    if hubert is not None:
        export_hubert(hubert, out / "ssl.onnx")
    if bert is not None:
        bert_info = export_bert(bert, out / "bert.onnx")
        if isinstance(bert, (str, Path)):
            vocab = Path(bert) / "vocab.txt"
            if not vocab.is_file():
                raise ExportError(f"{vocab} is missing")
            (out / "vocab.txt").write_text(vocab.read_text(encoding="utf-8"), encoding="utf-8")

    cfg = (ckpt.get("config") or {}).get("inference") or {}
    meta = {
        "format": "vctts-gpt-sovits",
        "format_version": FORMAT_VERSION,
        "model_version": "v2",
        "sample_rate": 32000,
        "ssl_sample_rate": 16000,
        "ssl_dim": 768,
        "bert_dim": 1024,
        "bert_max_positions": (bert_info or {}).get("max_positions", 512),
        "n_layer": n_layer,
        "n_head": 16,
        "d_model": D_MODEL,
        "phone_vocab": 732,
        "semantic_vocab": 1025,
        "eos": 1024,
        "codebook_size": 1024,
        "spec_bins": 1025,
        "n_fft": 2048,
        "hop": 640,
        "noise_channels": 192,
        "noise_scale": 0.5,
        "samples_per_token": 1280,
        "ssl_frames_per_token": 2,
        "top_k": int(cfg.get("top_k", 15)),
        "files": {
            "ssl": "ssl.onnx",
            "vq_encode": "vq_encode.onnx",
            "bert": "bert.onnx",
            "vocab": "vocab.txt",
            "t2s_encoder": "t2s_encoder.onnx",
            "t2s_prefill": "t2s_prefill.onnx",
            "t2s_step": "t2s_step.onnx",
            "vits": "vits.onnx",
        },
        "weights": {
            name: (out / name).stat().st_size for name in ("t2s_encoder.bin", "t2s_decoder.bin", "vits.bin")
        },
        "source": {"gpt": gpt.name, "sovits": sovits_path.name, "templates": "genie-tts 2.0.2 Data/v2"},
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpt", required=True, type=Path, help="trained GPT .ckpt")
    ap.add_argument("--sovits", required=True, type=Path, help="trained SoVITS .pth")
    ap.add_argument("--hubert", required=True, type=Path, help="chinese-hubert-base folder")
    ap.add_argument("--bert", required=True, type=Path, help="chinese-roberta-wwm-ext-large folder")
    ap.add_argument("--out", required=True, type=Path, help="model folder to write")
    ap.add_argument("--templates", type=Path, help="Genie Data/v2 folder (default: from genie-tts)")
    a = ap.parse_args(argv)
    for p in (a.gpt, a.sovits):
        if not p.is_file():
            print(f"error: {p} does not exist", file=sys.stderr)
            return 2
    for p in (a.hubert, a.bert):
        if not p.is_dir():
            print(f"error: {p} is not a folder", file=sys.stderr)
            return 2
    try:
        meta = export(a.gpt, a.sovits, a.hubert, a.bert, a.out, a.templates)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {a.out} ({meta['n_layer']} T2S layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
