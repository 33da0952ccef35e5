//! One copy of a model's weights per process, however many sessions use it.
//!
//! `Session::run` takes `&mut self`, so every inference thread owns its own
//! sessions, and ONNX Runtime gives each session its own copy of the
//! initializers (63 MB for the default Piper voice, per thread). Here the
//! float32 initializers of a model (those stored as `raw_data` in the file,
//! at least [`MIN_SHARED_BYTES`] long, at the top level of the graph) are
//! read once into ONNX Runtime values and handed to every session built from
//! the same model bytes with `SessionBuilder::with_initializer`
//! (ONNX Runtime's `AddInitializer`: the session uses the caller's buffer,
//! no copy).
//!
//! Invariants: the cache holds only weak references, keyed by a hash of the
//! whole model (so two models never share by accident, and a file changed on
//! disk gets fresh values); the sessions hold the strong ones, so the values
//! are freed with the last session that uses them. Anything this reader does
//! not understand (external data, other element types, malformed bytes)
//! is left to ONNX Runtime, which then loads it the usual way.

use ort::value::DynValue;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::{Arc, Weak};

/// Smaller initializers are not worth sharing (the model keeps them).
pub const MIN_SHARED_BYTES: usize = 1024;

/// ONNX `TensorProto.DataType.FLOAT`.
const FLOAT: u64 = 1;

/// The shared initializers of one model.
#[derive(Debug, Clone)]
pub struct SharedWeights {
    /// Hash of the model bytes the values came from.
    pub key: u64,
    /// Initializer name and value.
    pub values: Vec<(String, Arc<DynValue>)>,
}

impl SharedWeights {
    /// Bytes of weights held once instead of once per session.
    pub fn bytes(&self) -> usize {
        self.values.iter().map(|(_, v)| value_bytes(v)).sum()
    }
}

fn value_bytes(v: &DynValue) -> usize {
    v.shape().iter().product::<i64>().max(0) as usize * 4
}

type Entry = Vec<(String, Weak<DynValue>)>;

static CACHE: Mutex<Option<HashMap<u64, Entry>>> = Mutex::new(None);

/// The hash that keys a model in the cache.
pub fn model_key(model: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write_usize(model.len());
    h.write(model);
    h.finish()
}

/// The shared float initializers of `model`, read from it the first time
/// (or again once every session that used them is gone). `None` when the
/// model has none worth sharing or cannot be read.
pub fn shared(model: &[u8]) -> Option<SharedWeights> {
    let key = model_key(model);
    // Held while reading: a second thread loading the same model waits and
    // then takes the first one's values.
    let mut guard = CACHE.lock();
    let cache = guard.get_or_insert_with(HashMap::new);
    cache.retain(|_, entry| entry.iter().all(|(_, w)| w.strong_count() > 0));
    if let Some(entry) = cache.get(&key) {
        let values: Option<Vec<_>> = entry
            .iter()
            .map(|(name, w)| w.upgrade().map(|v| (name.clone(), v)))
            .collect();
        if let Some(values) = values {
            return Some(SharedWeights { key, values });
        }
    }
    let values = read_initializers(model)?;
    if values.is_empty() {
        return None;
    }
    cache.insert(
        key,
        values
            .iter()
            .map(|(n, v)| (n.clone(), Arc::downgrade(v)))
            .collect(),
    );
    Some(SharedWeights { key, values })
}

/// How many models currently have shared weights alive.
pub fn cached_models() -> usize {
    let mut guard = CACHE.lock();
    let cache = guard.get_or_insert_with(HashMap::new);
    cache.retain(|_, entry| entry.iter().all(|(_, w)| w.strong_count() > 0));
    cache.len()
}

/// The float32 `raw_data` initializers of the top-level graph as values.
fn read_initializers(model: &[u8]) -> Option<Vec<(String, Arc<DynValue>)>> {
    // Values are ONNX Runtime objects: the library must be loaded first.
    super::environment().ok()?;
    let graph = fields(model)?
        .into_iter()
        .find(|f| f.number == 7 && f.wire == 2)?
        .payload;
    let mut out = Vec::new();
    for init in fields(graph)?
        .into_iter()
        .filter(|f| f.number == 5 && f.wire == 2)
    {
        if let Some((name, dims, data)) = float_tensor(init.payload) {
            let values: Vec<f32> = data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let tensor = ort::value::Tensor::from_array((dims, values)).ok()?;
            out.push((name, Arc::new(tensor.into_dyn())));
        }
    }
    Some(out)
}

/// Name, dims and raw bytes of a float tensor stored inline, when it is one
/// worth sharing.
fn float_tensor(tensor: &[u8]) -> Option<(String, Vec<i64>, &[u8])> {
    let mut dims = Vec::new();
    let (mut data_type, mut name, mut raw) = (0, None, None);
    for f in fields(tensor)? {
        match (f.number, f.wire) {
            (1, 0) => dims.push(f.value as i64),
            (1, 2) => {
                let mut pos = 0;
                while pos < f.payload.len() {
                    dims.push(varint(f.payload, &mut pos)? as i64);
                }
            }
            (2, 0) => data_type = f.value,
            (8, 2) => name = Some(std::str::from_utf8(f.payload).ok()?.to_string()),
            (9, 2) => raw = Some(f.payload),
            // A segment or external data: not an inline tensor.
            (3, _) => return None,
            (13, 0) if f.value != 0 => return None,
            _ => {}
        }
    }
    let raw = raw?;
    let elements = dims.iter().try_fold(1usize, |n, &d| {
        usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
    })?;
    (data_type == FLOAT && raw.len() >= MIN_SHARED_BYTES && raw.len() == elements * 4)
        .then_some((name?, dims, raw))
}

// ----------------------------------------------------------- wire format

struct Field<'a> {
    number: u64,
    wire: u8,
    payload: &'a [u8],
    value: u64,
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

fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (number, wire) = (key >> 3, (key & 7) as u8);
        let (payload, value): (&[u8], u64) = match wire {
            0 => (&[], varint(buf, &mut pos)?),
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                let p = buf.get(pos..pos.checked_add(n)?)?;
                pos += n;
                (p, 0)
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let p = buf.get(pos..pos.checked_add(len)?)?;
                pos += len;
                (p, 0)
            }
            _ => return None,
        };
        out.push(Field {
            number,
            wire,
            payload,
            value,
        });
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn put_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
        put_varint(out, (number << 3) | 2);
        put_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    fn put_int(out: &mut Vec<u8>, number: u64, v: u64) {
        put_varint(out, number << 3);
        put_varint(out, v);
    }

    fn value_info(name: &str, dims: &[u64]) -> Vec<u8> {
        let mut shape = Vec::new();
        for d in dims {
            let mut dim = Vec::new();
            put_int(&mut dim, 1, *d);
            put_bytes(&mut shape, 1, &dim);
        }
        let mut tensor = Vec::new();
        put_int(&mut tensor, 1, FLOAT);
        put_bytes(&mut tensor, 2, &shape);
        let mut ty = Vec::new();
        put_bytes(&mut ty, 1, &tensor);
        let mut info = Vec::new();
        put_bytes(&mut info, 1, name.as_bytes());
        put_bytes(&mut info, 2, &ty);
        info
    }

    /// A model computing `y = x · W` for x [1, k] and a float initializer
    /// W [k, n] (row-major `w`), written field by field.
    pub(crate) fn matmul_model(k: u64, n: u64, w: &[f32]) -> Vec<u8> {
        let mut node = Vec::new();
        put_bytes(&mut node, 1, b"x");
        put_bytes(&mut node, 1, b"W");
        put_bytes(&mut node, 2, b"y");
        put_bytes(&mut node, 4, b"MatMul");
        let mut init = Vec::new();
        put_int(&mut init, 1, k);
        put_int(&mut init, 1, n);
        put_int(&mut init, 2, FLOAT);
        put_bytes(&mut init, 8, b"W");
        let raw: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        put_bytes(&mut init, 9, &raw);
        let mut graph = Vec::new();
        put_bytes(&mut graph, 1, &node);
        put_bytes(&mut graph, 2, b"g");
        put_bytes(&mut graph, 5, &init);
        put_bytes(&mut graph, 11, &value_info("x", &[1, k]));
        put_bytes(&mut graph, 12, &value_info("y", &[1, n]));
        let mut opset = Vec::new();
        put_int(&mut opset, 2, 17);
        let mut model = Vec::new();
        put_int(&mut model, 1, 8); // ir_version
        put_bytes(&mut model, 7, &graph);
        put_bytes(&mut model, 8, &opset);
        model
    }

    #[test]
    fn reads_float_initializers_worth_sharing() {
        let w: Vec<f32> = (0..512).map(|i| i as f32).collect();
        let values = read_initializers(&matmul_model(16, 32, &w)).unwrap();
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].0, "W");
        assert_eq!(&values[0].1.shape()[..], &[16, 32]);
        let (_, data) = values[0].1.try_extract_tensor::<f32>().unwrap();
        assert_eq!(data, &w[..]);
        // Below the threshold: left in the model.
        let small = read_initializers(&matmul_model(2, 2, &[1.0; 4])).unwrap();
        assert!(small.is_empty());
        // Not a model.
        assert!(read_initializers(b"\xff\xff\xff").is_none());
    }

    #[test]
    fn the_same_model_gets_the_same_values_while_they_are_used() {
        let w: Vec<f32> = (0..1024).map(|i| (i % 7) as f32).collect();
        let model = matmul_model(32, 32, &w);
        let a = shared(&model).unwrap();
        let b = shared(&model).unwrap();
        assert!(Arc::ptr_eq(&a.values[0].1, &b.values[0].1));
        assert_eq!(a.bytes(), 4096);
        // Another model: other values.
        let mut w2 = w.clone();
        w2[0] = 9.0;
        let c = shared(&matmul_model(32, 32, &w2)).unwrap();
        assert!(!Arc::ptr_eq(&a.values[0].1, &c.values[0].1));
        // Once nobody holds them they are freed, and read again next time.
        let weak = Arc::downgrade(&a.values[0].1);
        drop((a, b));
        assert!(weak.upgrade().is_none());
        let d = shared(&model).unwrap();
        assert_eq!(d.values.len(), 1);
    }
}
