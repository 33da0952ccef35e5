//! The decoder's 1-D convolutions rewritten as 2-D convolutions of height 1,
//! so that ONNX Runtime runs them on its blocked-layout kernels.
//!
//! ONNX Runtime's CPU provider, at its highest optimisation level, moves
//! 2-D convolutions whose channels are multiples of its block (8 or 16
//! floats) to a blocked channel layout (NCHWc) with direct convolution
//! kernels. A 1-D convolution (a rank-3 tensor) never takes that path: it
//! runs as im2col and a matrix product. A Piper voice's HiFi-GAN decoder is
//! nothing but 1-D convolutions (and transposed ones) between element-wise
//! ops, so [`widen`] rewrites the decoder part of [`super::split`] to rank 4:
//! each input gets a `Reshape` to `[N, C, 1, T]`, each `Conv` and
//! `ConvTranspose` gets its weight's dims `[O, I, 1, K]` (the same bytes:
//! a height of 1 changes no offset) and its attributes one leading
//! spatial entry (kernel 1, stride 1, dilation 1, no padding), and the
//! output a `Reshape` back to `[N, C, T·hop]`. Every other op of the
//! decoder is element-wise, so it works unchanged on rank 4; anything else
//! (or an element-wise operand that would broadcast differently on rank 4:
//! only scalars are allowed beside decoder tensors) leaves the decoder as it
//! was (`None`).
//!
//! Measured on `en_US-joe-medium` (ONNX Runtime 1.32 CPU, AVX-512, a
//! window of 300 latent frames, medians of 10, from Python): one thread
//! 114 → 90 ms per run; two runs at once on one thread each 59 → 46 ms per
//! run; one run on a pool of two threads 66 → 71 ms (the blocked kernels
//! split work less evenly, and each convolution reorders its input and
//! output, since ONNX Runtime cannot carry the blocked layout through
//! `LeakyRelu`). The samples differ from the rank-3 graph's by float
//! rounding only (below 1e-6 of a full scale of 1).

use std::collections::{HashMap, HashSet};

use super::noise::{
    Field, parse, put_bytes, put_varint, put_varint_field, string_field, strings, tensor_i64,
};

/// Suffix of the rank-4 names [`widen`] gives the decoder's inputs and output.
pub const SUFFIX: &str = "/vctts_2d";
/// Initializer holding the `Reshape` target of the inputs, `[0, 0, 1, -1]`.
const TO_RANK4: &str = "vctts_2d/rank4";
/// Initializer holding the `Reshape` target of the output, `[0, 0, -1]`.
const TO_RANK3: &str = "vctts_2d/rank3";

/// Ops that compute each output element from the same element of their
/// inputs (a scalar operand aside), whatever the rank.
const ELEMENTWISE: [&str; 11] = [
    "Add",
    "Sub",
    "Mul",
    "Div",
    "LeakyRelu",
    "Relu",
    "Tanh",
    "Sigmoid",
    "Identity",
    "Neg",
    "Abs",
];

/// The decoder `model` (one output, rank-3 float inputs, as
/// [`super::split::split_decoder`] writes it) with its convolutions in two
/// dimensions (see the module docs); `None` when it holds anything the
/// rewrite does not cover, or the bytes cannot be read.
pub fn widen(model: &[u8]) -> Option<Vec<u8>> {
    let fields = parse(model)?;
    if default_opset(&fields).is_none_or(|v| v < 5) {
        return None;
    }
    let mut graphs = fields.iter().filter(|f| f.number == 7 && f.wire == 2);
    let graph = parse(graphs.next()?.payload)?;
    if graphs.next().is_some() {
        return None;
    }
    let names = |number: u64| -> Option<Vec<&str>> {
        graph
            .iter()
            .filter(|f| f.number == number && f.wire == 2)
            .map(|f| string_field(&parse(f.payload)?, if number == 5 { 8 } else { 1 }))
            .collect()
    };
    let inputs = names(11)?;
    let [output] = names(12)?[..] else {
        return None;
    };
    let mut initializers: HashMap<&str, Vec<Field<'_>>> = HashMap::new();
    for f in graph.iter().filter(|f| f.number == 5 && f.wire == 2) {
        let t = parse(f.payload)?;
        initializers.insert(string_field(&t, 8)?, t);
    }
    if [TO_RANK4, TO_RANK3].iter().any(|n| initializers.contains_key(n)) {
        return None;
    }

    // Which tensors become rank 4, which are scalars, which weights turn.
    let mut wide: HashSet<&str> = inputs.iter().copied().collect();
    let mut scalars: HashSet<&str> = initializers
        .iter()
        .filter(|(_, t)| elements(t).is_some_and(|n| n <= 1))
        .map(|(n, _)| *n)
        .collect();
    let mut weights: HashSet<&str> = HashSet::new();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    let mut nodes = Vec::new();
    for f in graph.iter().filter(|f| f.number == 1 && f.wire == 2) {
        let n = parse(f.payload)?;
        if string_field(&n, 7).is_some_and(|d| !d.is_empty()) {
            return None;
        }
        let op = string_field(&n, 4)?;
        let ins = strings(&n, 1);
        let outs = strings(&n, 2);
        for i in &ins {
            *uses.entry(i).or_default() += 1;
        }
        match op {
            "Constant" => {
                let value = n
                    .iter()
                    .find(|a| a.number == 5 && a.wire == 2)
                    .map(|a| parse(a.payload));
                if let Some(Some(attr)) = value {
                    let scalar = match string_field(&attr, 1) {
                        Some("value") => {
                            let t = parse(attr.iter().find(|x| x.number == 5 && x.wire == 2)?.payload)?;
                            elements(&t).is_some_and(|n| n <= 1)
                        }
                        Some("value_float" | "value_int") => true,
                        _ => false,
                    };
                    if scalar {
                        scalars.extend(outs.iter().copied());
                    }
                }
            }
            "Conv" | "ConvTranspose" => {
                let (x, w) = (*ins.first()?, *ins.get(1)?);
                if !wide.contains(x) || wide.contains(w) || ins.iter().skip(2).any(|b| wide.contains(b)) {
                    return None;
                }
                let weight = initializers.get(w)?;
                if dims(weight)?.len() != 3 || weight.iter().any(|f| f.number == 2 && f.value != 1) {
                    return None;
                }
                weights.insert(w);
                wide.extend(outs.iter().copied());
            }
            op if ELEMENTWISE.contains(&op) => {
                if !ins.iter().any(|i| wide.contains(i))
                    || ins
                        .iter()
                        .any(|i| !i.is_empty() && !wide.contains(i) && !scalars.contains(i))
                {
                    return None;
                }
                wide.extend(outs.iter().copied());
            }
            _ => return None,
        }
        nodes.push((f, n, op));
    }
    // A turned weight feeds its convolution only; the output is rank 4.
    if weights.iter().any(|w| uses.get(w) != Some(&1)) || !wide.contains(output) || weights.is_empty() {
        return None;
    }

    let renamed = |name: &str| -> String {
        if inputs.contains(&name) || name == output {
            format!("{name}{SUFFIX}")
        } else {
            name.to_string()
        }
    };
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    for name in &inputs {
        pieces.push(field(1, &reshape(name, TO_RANK4, &renamed(name))));
    }
    for (_, n, op) in &nodes {
        let conv = matches!(*op, "Conv" | "ConvTranspose");
        let mut node = Vec::new();
        for f in n {
            match (f.number, f.wire) {
                (1 | 2, 2) => put_bytes(
                    &mut node,
                    f.number,
                    renamed(std::str::from_utf8(f.payload).ok()?).as_bytes(),
                ),
                (5, 2) if conv => node.extend(field(5, &conv_attribute(f.payload)?)),
                _ => node.extend_from_slice(f.raw),
            }
        }
        pieces.push(field(1, &node));
    }
    pieces.push(field(1, &reshape(&renamed(output), TO_RANK3, output)));
    for f in &graph {
        match f.number {
            1 | 13 => {}
            5 => {
                let t = parse(f.payload)?;
                let name = string_field(&t, 8)?;
                if weights.contains(name) {
                    pieces.push(field(5, &turned_weight(&t)?));
                } else {
                    pieces.push(f.raw.to_vec());
                }
            }
            _ => pieces.push(f.raw.to_vec()),
        }
    }
    for (name, shape) in [(TO_RANK4, &[0i64, 0, 1, -1][..]), (TO_RANK3, &[0, 0, -1])] {
        let mut t = tensor_i64(&[shape.len() as i64], shape);
        put_bytes(&mut t, 8, name.as_bytes());
        pieces.push(field(5, &t));
    }
    let graph_bytes: Vec<u8> = pieces.concat();
    let mut out = Vec::with_capacity(model.len() + 4096);
    for f in &fields {
        if f.number == 7 {
            out.extend(field(7, &graph_bytes));
        } else {
            out.extend_from_slice(f.raw);
        }
    }
    Some(out)
}

/// A `Reshape` node of `input` to the shape in initializer `shape`, named
/// after its output under this module's prefix.
fn reshape(input: &str, shape: &str, output: &str) -> Vec<u8> {
    let mut n = Vec::new();
    put_bytes(&mut n, 1, input.as_bytes());
    put_bytes(&mut n, 1, shape.as_bytes());
    put_bytes(&mut n, 2, output.as_bytes());
    put_bytes(&mut n, 3, format!("vctts_2d/reshape/{output}").as_bytes());
    put_bytes(&mut n, 4, b"Reshape");
    n
}

/// A length-delimited field `number` holding `payload`.
fn field(number: u64, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(payload.len() + 8);
    put_bytes(&mut b, number, payload);
    b
}

/// The version of the default (`ai.onnx`) opset a model imports.
fn default_opset(model: &[Field<'_>]) -> Option<u64> {
    model
        .iter()
        .filter(|f| f.number == 8 && f.wire == 2)
        .filter_map(|f| parse(f.payload))
        .find(|o| string_field(o, 1).unwrap_or("").is_empty() || string_field(o, 1) == Some("ai.onnx"))
        .and_then(|o| o.iter().find(|x| x.number == 2 && x.wire == 0).map(|x| x.value))
}

/// Repeated int64 field `number` of a message, packed or not.
fn ints(fields: &[Field<'_>], number: u64) -> Option<Vec<i64>> {
    let mut out = Vec::new();
    for f in fields.iter().filter(|f| f.number == number) {
        match f.wire {
            0 => out.push(f.value as i64),
            2 => {
                let mut pos = 0;
                while pos < f.payload.len() {
                    out.push(read_varint(f.payload, &mut pos)? as i64);
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// A tensor's dims.
fn dims(tensor: &[Field<'_>]) -> Option<Vec<i64>> {
    ints(tensor, 1)
}

/// A tensor's element count, when its dims say.
fn elements(tensor: &[Field<'_>]) -> Option<i64> {
    dims(tensor)?.iter().try_fold(1i64, |n, d| n.checked_mul(*d))
}

/// A rank-3 weight `[O, I, K]` as `[O, I, 1, K]`: the dims change, the
/// data (every other field) is kept as it is.
fn turned_weight(tensor: &[Field<'_>]) -> Option<Vec<u8>> {
    let d = dims(tensor)?;
    let [o, i, k] = d[..] else { return None };
    let mut out = Vec::new();
    for dim in [o, i, 1, k] {
        put_varint_field(&mut out, 1, dim as u64);
    }
    for f in tensor.iter().filter(|f| f.number != 1) {
        out.extend_from_slice(f.raw);
    }
    Some(out)
}

/// A convolution's attribute for two dimensions, the first of height 1;
/// `None` for one the rewrite does not know (`output_shape` among them).
fn conv_attribute(attribute: &[u8]) -> Option<Vec<u8>> {
    let a = parse(attribute)?;
    let name = string_field(&a, 1)?;
    let v = ints(&a, 8)?;
    let turned: Vec<i64> = match (name, &v[..]) {
        ("group" | "auto_pad", _) => return Some(attribute.to_vec()),
        ("kernel_shape" | "strides" | "dilations", [x]) => vec![1, *x],
        ("output_padding", [x]) => vec![0, *x],
        ("pads", [begin, end]) => vec![0, *begin, 0, *end],
        _ => return None,
    };
    let mut out = Vec::new();
    put_bytes(&mut out, 1, name.as_bytes());
    for x in turned {
        put_varint(&mut out, 8 << 3);
        put_varint(&mut out, x as u64);
    }
    put_varint_field(&mut out, 20, 7); // INTS
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openvoice::noise::{attr_int, tensor_f32};
    use ort::value::Tensor;

    fn ints_attr(name: &str, v: &[i64]) -> Vec<u8> {
        let mut a = Vec::new();
        put_bytes(&mut a, 1, name.as_bytes());
        for x in v {
            put_varint_field(&mut a, 8, *x as u64);
        }
        put_varint_field(&mut a, 20, 7);
        a
    }

    fn named(mut tensor: Vec<u8>, name: &str) -> Vec<u8> {
        put_bytes(&mut tensor, 8, name.as_bytes());
        tensor
    }

    /// Deterministic weights in [-0.5, 0.5).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) - 0.5
            })
            .collect()
    }

    /// A HiFi-GAN-shaped decoder on `x` `[1, 16, T]`: a convolution to 32
    /// channels, LeakyRelu, a transposed convolution upsampling by 2 to 16
    /// channels, a dilated convolution with a residual add, a division by a
    /// Constant scalar, a convolution to one channel without bias, Tanh.
    fn decoder(extra: Option<Vec<u8>>) -> Vec<u8> {
        let node = super::super::noise::node;
        let mut graph = Vec::new();
        let mut nodes = vec![
            node(
                "Conv",
                &["x", "w_pre", "b_pre"],
                &["a"],
                &[
                    ints_attr("kernel_shape", &[7]),
                    ints_attr("pads", &[3, 3]),
                    ints_attr("dilations", &[1]),
                    ints_attr("strides", &[1]),
                    attr_int("group", 1),
                ],
            ),
            node("LeakyRelu", &["a"], &["b"], &[]),
            node(
                "ConvTranspose",
                &["b", "w_up", "b_up"],
                &["c"],
                &[
                    ints_attr("kernel_shape", &[4]),
                    ints_attr("pads", &[1, 1]),
                    ints_attr("strides", &[2]),
                ],
            ),
            node(
                "Conv",
                &["c", "w_res", "b_res"],
                &["d"],
                &[
                    ints_attr("kernel_shape", &[3]),
                    ints_attr("pads", &[3, 3]),
                    ints_attr("dilations", &[3]),
                ],
            ),
            node("Add", &["d", "c"], &["e"], &[]),
            node(
                "Constant",
                &[],
                &["three"],
                &[{
                    let mut a = Vec::new();
                    put_bytes(&mut a, 1, b"value");
                    put_bytes(&mut a, 5, &tensor_f32(&[], &[3.0]));
                    put_varint_field(&mut a, 20, 4);
                    a
                }],
            ),
            node("Div", &["e", "three"], &["f"], &[]),
            node(
                "Conv",
                &["f", "w_post"],
                &["g"],
                &[ints_attr("kernel_shape", &[7]), ints_attr("pads", &[3, 3])],
            ),
            node("Tanh", &["g"], &["y"], &[]),
        ];
        if let Some(extra) = extra {
            nodes.insert(4, extra);
        }
        for n in &nodes {
            put_bytes(&mut graph, 1, n);
        }
        put_bytes(&mut graph, 2, b"decoder");
        for (name, dims, seed) in [
            ("w_pre", vec![32i64, 16, 7], 1u32),
            ("b_pre", vec![32], 2),
            ("w_up", vec![32, 16, 4], 3),
            ("b_up", vec![16], 4),
            ("w_res", vec![16, 16, 3], 5),
            ("b_res", vec![16], 6),
            ("w_post", vec![1, 16, 7], 7),
            ("w_extra", vec![16, 16, 3], 8),
        ] {
            let n = dims.iter().product::<i64>() as usize;
            put_bytes(&mut graph, 5, &named(tensor_f32(&dims, &values(n, seed)), name));
        }
        put_bytes(&mut graph, 11, &super::super::noise::value_info("x", 1, None));
        put_bytes(&mut graph, 12, &super::super::noise::value_info("y", 1, None));
        put_bytes(&mut graph, 13, &super::super::noise::value_info("a", 1, None));
        let mut opset = Vec::new();
        put_bytes(&mut opset, 1, b"");
        put_varint_field(&mut opset, 2, 15);
        let mut model = Vec::new();
        put_varint_field(&mut model, 1, 8);
        put_bytes(&mut model, 7, &graph);
        put_bytes(&mut model, 8, &opset);
        model
    }

    fn run(model: &[u8], x: &[f32], frames: usize, threads: usize) -> (Vec<i64>, Vec<f32>) {
        crate::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
        let config = crate::runtime::SessionConfig {
            intra_threads: threads,
            ..Default::default()
        };
        let mut s = crate::runtime::load_session_from_memory(model, "decoder", &config).unwrap();
        let t = Tensor::from_array(([1usize, 16, frames], x.to_vec())).unwrap();
        let out = s.run(ort::inputs!["x" => t]).unwrap();
        let (shape, data) = out["y"].try_extract_tensor::<f32>().unwrap();
        (shape.to_vec(), data.to_vec())
    }

    #[test]
    fn a_widened_decoder_gives_the_same_samples() {
        let model = decoder(None);
        let wide = widen(&model).expect("the decoder widens");
        let frames = 37;
        let x = values(16 * frames, 9);
        let (shape, expected) = run(&model, &x, frames, 1);
        assert_eq!(shape, [1, 1, 2 * frames as i64]);
        for threads in [1, 2] {
            let (shape2, got) = run(&wide, &x, frames, threads);
            assert_eq!(shape2, shape);
            let diff = crate::audio::max_abs_diff(&got, &expected);
            assert!(diff < 1e-5, "{threads} threads: differs by {diff}");
        }
        // The rewrite is what ran: the widened graph's weights are rank 4,
        // reshapes frame it, and the rank-3 value_info is gone.
        let fields = parse(&wide).unwrap();
        let graph = parse(fields.iter().find(|f| f.number == 7).unwrap().payload).unwrap();
        let mut ranks = HashMap::new();
        for f in graph.iter().filter(|f| f.number == 5) {
            let t = parse(f.payload).unwrap();
            ranks.insert(string_field(&t, 8).unwrap().to_string(), dims(&t).unwrap().len());
        }
        for w in ["w_pre", "w_up", "w_res", "w_post"] {
            assert_eq!(ranks[w], 4, "{w}");
        }
        assert_eq!((ranks["b_pre"], ranks[TO_RANK4], ranks[TO_RANK3]), (1, 1, 1));
        let ops: Vec<String> = graph
            .iter()
            .filter(|f| f.number == 1)
            .map(|f| string_field(&parse(f.payload).unwrap(), 4).unwrap().to_string())
            .collect();
        assert_eq!(
            (ops[0].as_str(), ops[ops.len() - 1].as_str()),
            ("Reshape", "Reshape")
        );
        assert!(graph.iter().all(|f| f.number != 13));
    }

    #[test]
    fn decoders_the_rewrite_does_not_cover_are_left_alone() {
        let node = super::super::noise::node;
        // A non-scalar operand would broadcast differently on rank 4.
        let mut model = decoder(Some(node("Mul", &["c", "b_res"], &["c2"], &[])));
        assert!(widen(&model).is_none(), "a [C, 1] operand");
        // An op outside the element-wise set.
        model = decoder(Some(node("Transpose", &["c"], &["c2"], &[])));
        assert!(widen(&model).is_none(), "Transpose");
        // A conv weight also read by another node.
        model = decoder(Some(node("Add", &["c", "w_res"], &["c2"], &[])));
        assert!(widen(&model).is_none(), "a shared weight");
        // An attribute the rewrite does not know.
        model = decoder(Some(node(
            "ConvTranspose",
            &["c", "w_extra"],
            &["c2"],
            &[ints_attr("output_shape", &[5])],
        )));
        assert!(widen(&model).is_none(), "output_shape");
        // Not a model.
        assert!(widen(b"\xff\xff").is_none());
        // The decoder widens with a convolution more, or none (the cases
        // above are the cause).
        model = decoder(Some(node(
            "Conv",
            &["c", "w_extra"],
            &["c2"],
            &[ints_attr("kernel_shape", &[3])],
        )));
        assert!(widen(&model).is_some());
        assert!(widen(&decoder(None)).is_some());
    }

    /// The default voice's decoder, widened, decodes a latent of its front
    /// as the exported decoder does, on one thread and on two.
    #[test]
    fn the_default_voice_decodes_the_same_in_two_dimensions() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/openvoice/base/en_US-joe-medium.onnx");
        let voice = std::fs::read(path).expect("the default voice: run scripts/setup.sh");
        let split = super::super::split::split_decoder(&voice).expect("the voice splits");
        let wide = widen(&split.decoder).expect("its decoder widens");
        crate::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
        let session = |model: &[u8], threads| {
            let config = crate::runtime::SessionConfig {
                intra_threads: threads,
                ..Default::default()
            };
            crate::runtime::load_session_from_memory(model, "decoder", &config).unwrap()
        };
        // A latent of 90 frames with the values of a real one's range.
        let frames = 90;
        let latent: Vec<f32> = values(192 * frames, 11).iter().map(|v| v * 2.0).collect();
        let decode = |s: &mut ort::session::Session| {
            let t = Tensor::from_array(([1usize, 192, frames], latent.clone())).unwrap();
            let out = s.run(ort::inputs![split.latent.as_str() => t]).unwrap();
            let (shape, data) = out[split.output.as_str()].try_extract_tensor::<f32>().unwrap();
            (shape.to_vec(), data.to_vec())
        };
        let (shape, expected) = decode(&mut session(&split.decoder, 1));
        assert_eq!(shape, [1, 1, 256 * frames as i64]);
        for threads in [1, 2] {
            let (shape2, got) = decode(&mut session(&wide, threads));
            assert_eq!(shape2, shape);
            let diff = crate::audio::max_abs_diff(&got, &expected);
            assert!(diff < 1e-5, "{threads} threads: differs by {diff}");
        }
    }
}
