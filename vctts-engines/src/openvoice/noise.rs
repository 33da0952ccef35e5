//! Seedable noise for Piper voices, without touching the voice files.
//!
//! A Piper VITS graph draws its noise with `RandomNormalLike` nodes (the
//! prior's `z_p` and the duration predictor's), which take no seed from the
//! caller: ONNX Runtime seeds them once per process. [`seed_random_nodes`]
//! rewrites the loaded model's bytes in memory (the file on disk is never
//! changed): every `RandomNormalLike(X)` becomes a small deterministic
//! generator over X's shape fed by one new graph input, [`SEED_INPUT`]
//! (int64 [1], 1 ≤ seed < 2³¹−1). Each element hashes its flat index with the
//! seed and a per-node salt through integer multiply/modulo rounds (all
//! products stay below 2⁶³), which gives two uniforms in (0,1) turned into a
//! standard normal by Box–Muller, then the node's own `scale` and `mean`.
//! The same seed therefore gives the same noise, element for element, on
//! every run and every path.
//!
//! The protobuf is edited at the wire level: the model's fields are copied
//! byte for byte except the graph, whose fields are copied except the random
//! nodes (replaced) and the new input (appended). Anything unexpected (a
//! non-float `dtype`, malformed bytes) leaves the model unchanged and the
//! caller treats the voice as unseedable.

/// Name of the graph input the rewritten model takes.
pub const SEED_INPUT: &str = "vctts_noise_seed";
/// The modulus of the hash rounds (2³¹ − 1, a prime).
const M: i64 = 2_147_483_647;

/// Maps any `u64` to a valid [`SEED_INPUT`] value, `1..M`.
pub fn seed_value(seed: u64) -> i64 {
    (seed % (M as u64 - 1)) as i64 + 1
}

/// Whether the model's graph has a random node (`RandomNormal`,
/// `RandomNormalLike`, `RandomUniform`, `RandomUniformLike`, `Multinomial`,
/// `Bernoulli`) at its top level; `None` if the bytes cannot be read.
pub fn has_random_nodes(model: &[u8]) -> Option<bool> {
    let fields = parse(model)?;
    let graph = parse(fields.iter().find(|f| f.number == 7 && f.wire == 2)?.payload)?;
    for f in graph.iter().filter(|f| f.number == 1 && f.wire == 2) {
        let node = parse(f.payload)?;
        if matches!(
            string_field(&node, 4),
            Some(
                "RandomNormal"
                    | "RandomNormalLike"
                    | "RandomUniform"
                    | "RandomUniformLike"
                    | "Multinomial"
                    | "Bernoulli"
            )
        ) {
            return Some(true);
        }
    }
    Some(false)
}

/// The model with every `RandomNormalLike` node replaced by the seeded
/// generator and the [`SEED_INPUT`] input added, and how many nodes were
/// replaced; `None` if the model has none or cannot be rewritten.
pub fn seed_random_nodes(model: &[u8]) -> Option<(Vec<u8>, usize)> {
    let fields = parse(model)?;
    let mut rewritten = None;
    for f in &fields {
        if f.number == 7 && f.wire == 2 {
            rewritten = Some(rewrite_graph(f.payload)?);
            break;
        }
    }
    let (graph, replaced) = rewritten?;
    // One allocation of the final size and one copy of the (large)
    // initializers: the model is tens of MB, and every extra copy is as much
    // peak memory and as many page faults at load.
    let graph_len: usize = graph.iter().map(|p| p.len()).sum();
    let mut header = Vec::with_capacity(12);
    put_varint(&mut header, (7 << 3) | 2);
    put_varint(&mut header, graph_len as u64);
    let total: usize = fields
        .iter()
        .map(|f| {
            if f.number == 7 && f.wire == 2 {
                header.len() + graph_len
            } else {
                f.raw.len()
            }
        })
        .sum();
    let mut out = Vec::with_capacity(total);
    let mut graph = Some(graph);
    for f in &fields {
        if f.number == 7 && f.wire == 2 {
            // A second graph field would be merged by protobuf; copy it as is.
            match graph.take() {
                Some(pieces) => {
                    out.extend_from_slice(&header);
                    for p in &pieces {
                        out.extend_from_slice(p.bytes());
                    }
                }
                None => out.extend_from_slice(f.raw),
            }
        } else {
            out.extend_from_slice(f.raw);
        }
    }
    (replaced > 0).then_some((out, replaced))
}

/// A piece of the rewritten graph: a field of the original bytes or a new one.
enum Piece<'a> {
    Same(&'a [u8]),
    New(Vec<u8>),
}

impl Piece<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Same(b) => b,
            Piece::New(b) => b,
        }
    }
    fn len(&self) -> usize {
        self.bytes().len()
    }
}

fn rewrite_graph(graph: &[u8]) -> Option<(Vec<Piece<'_>>, usize)> {
    let fields = parse(graph)?;
    let mut out = Vec::with_capacity(fields.len() + 16);
    let mut k = 0;
    for f in &fields {
        if f.number == 1 && f.wire == 2 {
            let node = parse(f.payload)?;
            if string_field(&node, 4) == Some("RandomNormalLike")
                && string_field(&node, 7).unwrap_or("").is_empty()
            {
                let input = strings(&node, 1);
                let output = strings(&node, 2);
                let (mean, scale, float) = attributes(&node)?;
                if input.len() != 1 || output.len() != 1 || !float {
                    return None;
                }
                for n in generator(k, input[0], output[0], mean, scale) {
                    let mut field = Vec::with_capacity(n.len() + 8);
                    put_bytes(&mut field, 1, &n);
                    out.push(Piece::New(field));
                }
                k += 1;
                continue;
            }
        }
        out.push(Piece::Same(f.raw));
    }
    if k == 0 {
        return None;
    }
    let mut input = Vec::new();
    put_bytes(&mut input, 11, &seed_input_info());
    out.push(Piece::New(input));
    Some((out, k))
}

/// (mean, scale, dtype is float) of a RandomNormalLike node.
fn attributes(node: &[Field]) -> Option<(f32, f32, bool)> {
    let mut mean = 0.0;
    let mut scale = 1.0;
    let mut float = true;
    for a in node.iter().filter(|f| f.number == 5 && f.wire == 2) {
        let attr = parse(a.payload)?;
        let name = string_field(&attr, 1).unwrap_or("");
        let f = attr
            .iter()
            .find(|x| x.number == 2 && x.wire == 5)
            .map(|x| f32::from_le_bytes([x.payload[0], x.payload[1], x.payload[2], x.payload[3]]));
        let i = attr
            .iter()
            .find(|x| x.number == 3 && x.wire == 0)
            .map(|x| x.value);
        match name {
            "mean" => mean = f?,
            "scale" => scale = f?,
            "dtype" => float = i? == 1,
            _ => {}
        }
    }
    Some((mean, scale, float))
}

/// The nodes that compute `output` = seeded normal noise shaped like `input`.
fn generator(k: usize, input: &str, output: &str, mean: f32, scale: f32) -> Vec<Vec<u8>> {
    let p = |s: &str| format!("vctts_noise{k}_{s}");
    let mut nodes = Vec::new();
    let mut constant = |name: &str, tensor: Vec<u8>| {
        nodes.push(node(
            "Constant",
            &[],
            &[&p(name)],
            &[attr_tensor("value", tensor)],
        ));
    };
    constant("minus1", tensor_i64(&[1], &[-1]));
    constant("axis", tensor_i64(&[], &[0]));
    let ints: [(&str, i64); 8] = [
        ("m", M),
        ("a1", 48_271),
        ("a2", 16_807),
        ("a3", 69_621),
        ("c1", 12_345),
        ("c2", 7),
        ("salt", (k as i64 + 1) * 1_000_003),
        ("salt2", (k as i64 + 1) * 7_919 + 11),
    ];
    for (name, v) in ints {
        constant(name, tensor_i64(&[], &[v]));
    }
    let floats: [(&str, f32); 5] = [
        ("fm", M as f32),
        ("half", 0.5),
        ("minus2", -2.0),
        ("tau", std::f32::consts::TAU),
        ("scale", scale),
    ];
    for (name, v) in floats {
        constant(name, tensor_f32(&[], &[v]));
    }
    constant("mean", tensor_f32(&[], &[mean]));
    let mut op = |kind: &str, ins: &[&str], out: &str, attrs: Vec<Vec<u8>>| {
        nodes.push(node(kind, ins, &[out], &attrs));
    };
    op("Shape", &[input], &p("shape"), vec![]);
    op(
        "ConstantOfShape",
        &[&p("shape")],
        &p("ones"),
        vec![attr_tensor("value", tensor_i64(&[1], &[1]))],
    );
    op("Reshape", &[&p("ones"), &p("minus1")], &p("flat"), vec![]);
    op("CumSum", &[&p("flat"), &p("axis")], &p("count"), vec![]);
    op("Reshape", &[&p("count"), &p("shape")], &p("idx"), vec![]);
    // h1 = (idx·a1 + seed + salt) mod m
    op("Mul", &[&p("idx"), &p("a1")], &p("t0"), vec![]);
    op("Add", &[&p("t0"), SEED_INPUT], &p("t1"), vec![]);
    op("Add", &[&p("t1"), &p("salt")], &p("t2"), vec![]);
    op("Mod", &[&p("t2"), &p("m")], &p("h1"), vec![]);
    // Rounds alternating squaring and affine steps, all mod m.
    let mut prev = p("h1");
    let rounds: [(&str, &str, &str); 5] = [
        ("sq", "", "c1"),
        ("mul", "a2", "c2"),
        ("sq", "", "salt2"),
        ("mul", "a3", "c1"),
        ("sq", "", "c2"),
    ];
    for (r, (kind, factor, add)) in rounds.iter().enumerate() {
        let prod = p(&format!("r{r}p"));
        if *kind == "sq" {
            op("Mul", &[&prev, &prev], &prod, vec![]);
        } else {
            op("Mul", &[&prev, &p(factor)], &prod, vec![]);
        }
        let sum = p(&format!("r{r}s"));
        op("Add", &[&prod, &p(add)], &sum, vec![]);
        let h = p(&format!("r{r}h"));
        op("Mod", &[&sum, &p("m")], &h, vec![]);
        prev = h;
    }
    // u1 from round 2, u2 from round 4: two uniforms in (0, 1).
    for (u, h) in [("u1", p("r2h")), ("u2", p("r4h"))] {
        op("Cast", &[&h], &p(&format!("{u}f")), vec![attr_int("to", 1)]);
        op(
            "Add",
            &[&p(&format!("{u}f")), &p("half")],
            &p(&format!("{u}h")),
            vec![],
        );
        op("Div", &[&p(&format!("{u}h")), &p("fm")], &p(u), vec![]);
    }
    op("Log", &[&p("u1")], &p("log"), vec![]);
    op("Mul", &[&p("log"), &p("minus2")], &p("r2"), vec![]);
    op("Sqrt", &[&p("r2")], &p("radius"), vec![]);
    op("Mul", &[&p("u2"), &p("tau")], &p("angle"), vec![]);
    op("Cos", &[&p("angle")], &p("cos"), vec![]);
    op("Mul", &[&p("radius"), &p("cos")], &p("normal"), vec![]);
    op("Mul", &[&p("normal"), &p("scale")], &p("scaled"), vec![]);
    op("Add", &[&p("scaled"), &p("mean")], output, vec![]);
    nodes
}

fn seed_input_info() -> Vec<u8> {
    value_info(SEED_INPUT, INT64, Some(&[Dim::Value(1)]))
}

/// ONNX `TensorProto.DataType` of `float`.
pub(super) const FLOAT: u64 = 1;
/// ONNX `TensorProto.DataType` of `int64`.
pub(super) const INT64: u64 = 7;

/// A dimension of a declared tensor shape.
pub(super) enum Dim {
    /// A fixed size (`dim_value`).
    Value(u64),
    /// A named, symbolic size (`dim_param`).
    Param(String),
}

/// A `ValueInfoProto`: a tensor named `name` of `elem_type`, with `dims` as
/// its shape when given (none: the shape is left undeclared).
pub(super) fn value_info(name: &str, elem_type: u64, dims: Option<&[Dim]>) -> Vec<u8> {
    let mut tensor = Vec::new();
    put_varint_field(&mut tensor, 1, elem_type);
    if let Some(dims) = dims {
        let mut shape = Vec::new();
        for d in dims {
            let mut dim = Vec::new();
            match d {
                Dim::Value(v) => put_varint_field(&mut dim, 1, *v),
                Dim::Param(p) => put_bytes(&mut dim, 2, p.as_bytes()),
            }
            put_bytes(&mut shape, 1, &dim);
        }
        put_bytes(&mut tensor, 2, &shape);
    }
    let mut ty = Vec::new();
    put_bytes(&mut ty, 1, &tensor);
    let mut info = Vec::new();
    put_bytes(&mut info, 1, name.as_bytes());
    put_bytes(&mut info, 2, &ty);
    info
}

// ----------------------------------------------------------- wire format

#[derive(Debug)]
pub(super) struct Field<'a> {
    pub(super) number: u64,
    pub(super) wire: u8,
    /// The whole field, key included, as it was.
    pub(super) raw: &'a [u8],
    /// Length-delimited: the bytes; fixed32: the 4 bytes.
    pub(super) payload: &'a [u8],
    /// Varint: the value.
    pub(super) value: u64,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

pub(super) fn parse(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = varint(buf, &mut pos)?;
        let (number, wire) = (key >> 3, (key & 7) as u8);
        let (payload, value) = match wire {
            0 => (&buf[pos..pos], varint(buf, &mut pos)?),
            1 => {
                let p = buf.get(pos..pos + 8)?;
                pos += 8;
                (p, 0)
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let p = buf.get(pos..pos.checked_add(len)?)?;
                pos += len;
                (p, 0)
            }
            5 => {
                let p = buf.get(pos..pos + 4)?;
                pos += 4;
                (p, 0)
            }
            _ => return None,
        };
        fields.push(Field {
            number,
            wire,
            raw: &buf[start..pos],
            payload,
            value,
        });
    }
    Some(fields)
}

pub(super) fn string_field<'a>(fields: &[Field<'a>], number: u64) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.number == number && f.wire == 2)
        .and_then(|f| std::str::from_utf8(f.payload).ok())
}

pub(super) fn strings<'a>(fields: &[Field<'a>], number: u64) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|f| f.number == number && f.wire == 2)
        .filter_map(|f| std::str::from_utf8(f.payload).ok())
        .collect()
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn put_varint_field(out: &mut Vec<u8>, number: u64, v: u64) {
    put_varint(out, number << 3);
    put_varint(out, v);
}

pub(super) fn put_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put_varint(out, (number << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(super) fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        put_bytes(&mut n, 1, i.as_bytes());
    }
    for o in outputs {
        put_bytes(&mut n, 2, o.as_bytes());
    }
    put_bytes(
        &mut n,
        3,
        format!("vctts/{}", outputs.first().unwrap_or(&op)).as_bytes(),
    );
    put_bytes(&mut n, 4, op.as_bytes());
    for a in attrs {
        put_bytes(&mut n, 5, a);
    }
    n
}

pub(super) fn attr_int(name: &str, v: i64) -> Vec<u8> {
    let mut a = Vec::new();
    put_bytes(&mut a, 1, name.as_bytes());
    put_varint_field(&mut a, 3, v as u64);
    put_varint_field(&mut a, 20, 2); // INT
    a
}

fn attr_tensor(name: &str, tensor: Vec<u8>) -> Vec<u8> {
    let mut a = Vec::new();
    put_bytes(&mut a, 1, name.as_bytes());
    put_bytes(&mut a, 5, &tensor);
    put_varint_field(&mut a, 20, 4); // TENSOR
    a
}

pub(super) fn tensor_i64(dims: &[i64], values: &[i64]) -> Vec<u8> {
    let mut t = Vec::new();
    for d in dims {
        put_varint_field(&mut t, 1, *d as u64);
    }
    put_varint_field(&mut t, 2, 7); // INT64
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    put_bytes(&mut t, 9, &raw);
    t
}

pub(super) fn tensor_f32(dims: &[i64], values: &[f32]) -> Vec<u8> {
    let mut t = Vec::new();
    for d in dims {
        put_varint_field(&mut t, 1, *d as u64);
    }
    put_varint_field(&mut t, 2, 1); // FLOAT
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    put_bytes(&mut t, 9, &raw);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model holding one `RandomNormalLike(x) -> y` (x float [1,2,n]).
    pub(crate) fn tiny_model(n: i64, mean: Option<f32>) -> Vec<u8> {
        let mut attrs = vec![attr_int("dtype", 1)];
        if let Some(m) = mean {
            let mut a = Vec::new();
            put_bytes(&mut a, 1, b"mean");
            put_varint(&mut a, (2 << 3) | 5);
            a.extend_from_slice(&m.to_le_bytes());
            put_varint_field(&mut a, 20, 1);
            attrs.push(a);
        }
        let rn = node("RandomNormalLike", &["x"], &["y"], &attrs);
        let value_info = |name: &str, dims: &[i64]| {
            let mut shape = Vec::new();
            for d in dims {
                let mut dim = Vec::new();
                put_varint_field(&mut dim, 1, *d as u64);
                put_bytes(&mut shape, 1, &dim);
            }
            let mut tensor = Vec::new();
            put_varint_field(&mut tensor, 1, 1);
            put_bytes(&mut tensor, 2, &shape);
            let mut ty = Vec::new();
            put_bytes(&mut ty, 1, &tensor);
            let mut info = Vec::new();
            put_bytes(&mut info, 1, name.as_bytes());
            put_bytes(&mut info, 2, &ty);
            info
        };
        let mut graph = Vec::new();
        put_bytes(&mut graph, 1, &rn);
        put_bytes(&mut graph, 2, b"tiny");
        put_bytes(&mut graph, 11, &value_info("x", &[1, 2, n]));
        put_bytes(&mut graph, 12, &value_info("y", &[1, 2, n]));
        let mut opset = Vec::new();
        put_bytes(&mut opset, 1, b"");
        put_varint_field(&mut opset, 2, 15);
        let mut model = Vec::new();
        put_varint_field(&mut model, 1, 8); // ir_version
        put_bytes(&mut model, 7, &graph);
        put_bytes(&mut model, 8, &opset);
        model
    }

    #[test]
    fn wire_format_round_trips() {
        let model = tiny_model(5, None);
        let fields = parse(&model).unwrap();
        let again: Vec<u8> = fields.iter().flat_map(|f| f.raw.to_vec()).collect();
        assert_eq!(again, model);
        assert!(parse(&[0x0a, 0x05, 1]).is_none(), "truncated");
        assert!(parse(&[0x0b]).is_none(), "group wire type");
    }

    #[test]
    fn random_nodes_are_replaced_and_the_input_added() {
        let (rewritten, n) = seed_random_nodes(&tiny_model(5, None)).unwrap();
        assert_eq!(n, 1);
        let fields = parse(&rewritten).unwrap();
        let graph = parse(fields.iter().find(|f| f.number == 7).unwrap().payload).unwrap();
        let ops: Vec<&str> = graph
            .iter()
            .filter(|f| f.number == 1)
            .map(|f| string_field(&parse(f.payload).unwrap(), 4).unwrap())
            .collect();
        assert!(!ops.contains(&"RandomNormalLike"));
        assert!(ops.contains(&"CumSum") && ops.contains(&"Cos"));
        let inputs: Vec<&str> = graph
            .iter()
            .filter(|f| f.number == 11)
            .map(|f| string_field(&parse(f.payload).unwrap(), 1).unwrap())
            .collect();
        assert_eq!(inputs, ["x", SEED_INPUT]);
        // Nothing to replace: no rewrite.
        assert!(seed_random_nodes(&rewritten).is_none());
        assert_eq!(has_random_nodes(&tiny_model(5, None)), Some(true));
        assert_eq!(has_random_nodes(&rewritten), Some(false));
        assert_eq!(has_random_nodes(b"\xff\xff"), None);
        assert!(seed_random_nodes(b"\xff\xff").is_none());
    }

    /// Runs the rewritten tiny model: `n` × 2 noise values for `seed`.
    fn draw(model: &[u8], n: usize, seed: i64) -> Vec<f32> {
        use ort::value::Tensor;
        crate::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
        let mut s = crate::runtime::load_session_from_memory(model, "tiny", &Default::default()).unwrap();
        let x = Tensor::from_array(([1usize, 2, n], vec![0f32; 2 * n])).unwrap();
        let seed = Tensor::from_array(([1usize], vec![seed])).unwrap();
        let out = s.run(ort::inputs!["x" => x, SEED_INPUT => seed]).unwrap();
        out[0].try_extract_tensor::<f32>().unwrap().1.to_vec()
    }

    #[test]
    fn seeded_noise_is_standard_normal_and_repeats() {
        let n = 20_000;
        let (model, _) = seed_random_nodes(&tiny_model(n as i64, None)).unwrap();
        let a = draw(&model, n, 5);
        assert_eq!(a.len(), 2 * n);
        assert_eq!(a, draw(&model, n, 5), "same seed, same noise");
        let b = draw(&model, n, 6);
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same < 10, "another seed, other noise ({same} equal)");
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
        let tail = a.iter().filter(|v| v.abs() > 1.96).count() as f64 / a.len() as f64;
        assert!((tail - 0.05).abs() < 0.01, "two-sided 5% tail {tail}");
        // Neighbouring values are not correlated.
        let lag: f64 = a.windows(2).map(|w| (w[0] * w[1]) as f64).sum::<f64>() / (a.len() - 1) as f64;
        assert!(lag.abs() < 0.03, "lag-1 correlation {lag}");
        // The node's mean attribute is kept.
        let (shifted, _) = seed_random_nodes(&tiny_model(n as i64, Some(3.0))).unwrap();
        let m = draw(&shifted, n, 5).iter().map(|&v| v as f64).sum::<f64>() / (2 * n) as f64;
        assert!((m - 3.0).abs() < 0.03, "{m}");
    }

    #[test]
    fn seed_values_are_in_range() {
        for s in [0, 1, u64::MAX, M as u64, M as u64 - 2] {
            let v = seed_value(s);
            assert!((1..M).contains(&v), "{s} -> {v}");
        }
    }
}
