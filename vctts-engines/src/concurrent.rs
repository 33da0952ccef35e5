//! One ONNX Runtime session that several inference lanes run at once.
//!
//! Each lane used to load its own copy of a model: a Piper voice is about
//! 90 MB once loaded, and every session grows its own memory arena to the
//! longest input it ever ran, so two lanes held two copies of both. ONNX
//! Runtime's `InferenceSession::Run` is documented as callable from several
//! threads at once on the CPU execution provider (piper-tts's HTTP server
//! relies on it through the Python API: its threaded server runs every
//! request on one session). The `ort` crate's `Session::run` takes
//! `&mut self` to stay safe on every execution provider (some GPU providers
//! are not), so [`ConcurrentSession::run`] calls the C API's `Run` itself.
//!
//! Invariants:
//! - On the CPU, runs overlap freely: the weights are held once and the
//!   session's one arena serves every run in flight (ONNX Runtime's arena
//!   locks its own bookkeeping).
//! - On any other device, runs are serialised by a lock: concurrent runs on
//!   one session are not safe there, and one device gains little from them.
//! - `run` returns owned output values (each released exactly once, when
//!   dropped); `run_f32` copies the first output out. A failed run returns
//!   an error naming the model (a missing or mistyped input, a cancelled
//!   run), never a panic.

use ort::AsPointer;
use std::ffi::CString;
use std::ptr::{self, NonNull};
use vctts_core::{Error, Result};

/// A session shared by every lane of an engine; see the module docs.
pub struct ConcurrentSession {
    session: ort::session::Session,
    /// Held for the whole run where the device cannot overlap runs.
    serial: Option<parking_lot::Mutex<()>>,
    /// Output names, as C strings, in the session's order.
    output_names: Vec<CString>,
    /// Errors name the model by this.
    name: String,
}

impl std::fmt::Debug for ConcurrentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcurrentSession")
            .field("name", &self.name)
            .field("serial", &self.serial.is_some())
            .finish()
    }
}

impl ConcurrentSession {
    /// Wraps a loaded session; `overlap` says whether its runs may overlap
    /// (the CPU execution provider), else they take turns.
    pub fn new(session: ort::session::Session, overlap: bool, name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let output_names = session
            .outputs()
            .iter()
            .map(|o| CString::new(o.name()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::ModelLoad(format!("{name}: an output name holds a NUL byte")))?;
        Ok(Self {
            session,
            serial: (!overlap).then(|| parking_lot::Mutex::new(())),
            output_names,
            name,
        })
    }

    /// The session's inputs.
    pub fn inputs(&self) -> &[ort::value::Outlet] {
        self.session.inputs()
    }

    /// Whether the session has an input of this name.
    pub fn has_input(&self, name: &str) -> bool {
        self.session.inputs().iter().any(|i| i.name() == name)
    }

    /// Runs the graph on named inputs with `options` (which a cancelled job
    /// terminates) and returns the first output's `f32` elements. Safe to call
    /// from several threads at once.
    pub fn run_f32(
        &self,
        inputs: &[(&str, &ort::value::DynValue)],
        options: &ort::session::RunOptions,
    ) -> Result<Vec<f32>> {
        let err = |e: ort::Error| Error::Inference(format!("{}: {e}", self.name));
        let outputs = self.run(inputs, options)?;
        let first = outputs
            .first()
            .ok_or_else(|| Error::Inference(format!("{}: the graph has no output", self.name)))?;
        let (_, data) = first.try_extract_tensor::<f32>().map_err(err)?;
        Ok(data.to_vec())
    }

    /// Runs the graph; every output, in the session's order.
    pub fn run(
        &self,
        inputs: &[(&str, &ort::value::DynValue)],
        options: &ort::session::RunOptions,
    ) -> Result<Vec<ort::value::DynValue>> {
        let names = inputs
            .iter()
            .map(|(n, _)| CString::new(*n))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::Inference(format!("{}: an input name holds a NUL byte", self.name)))?;
        let name_ptrs: Vec<*const std::ffi::c_char> = names.iter().map(|n| n.as_ptr()).collect();
        let value_ptrs: Vec<*const ort::sys::OrtValue> = inputs.iter().map(|(_, v)| v.ptr()).collect();
        let out_name_ptrs: Vec<*const std::ffi::c_char> =
            self.output_names.iter().map(|n| n.as_ptr()).collect();
        let mut out_ptrs: Vec<*mut ort::sys::OrtValue> = vec![ptr::null_mut(); out_name_ptrs.len()];
        let _turn = self.serial.as_ref().map(|m| m.lock());
        // SAFETY: every pointer is valid for the call: the session and the
        // run options are borrowed for it, the input values are borrowed
        // from the caller, the name arrays are alive until the end of this
        // function and their lengths match the value arrays; ONNX Runtime
        // fills `out_ptrs` (one slot per output name) and never keeps the
        // arrays. Concurrent `Run` calls on one session are allowed by ONNX
        // Runtime on the CPU provider; on other devices `_turn` serialises
        // them (see the module docs).
        let status = unsafe {
            (ort::api().Run)(
                self.session.ptr().cast_mut(),
                options.ptr(),
                name_ptrs.as_ptr(),
                value_ptrs.as_ptr(),
                value_ptrs.len(),
                out_name_ptrs.as_ptr(),
                out_name_ptrs.len(),
                out_ptrs.as_mut_ptr(),
            )
        };
        // SAFETY: `status` comes from the call above and is consumed once.
        let ran = unsafe { ort::Error::result_from_status(status) };
        // Take ownership of whatever was filled in before looking at the
        // status, so that no output leaks on an error.
        let mut outputs = Vec::with_capacity(out_ptrs.len());
        for p in out_ptrs {
            if let Some(p) = NonNull::new(p) {
                // SAFETY: a non-null slot holds a value ONNX Runtime created
                // for this run and handed to us; it is wrapped (and so
                // released) exactly once, with the session's allocator.
                outputs.push(unsafe { ort::value::DynValue::from_ptr(p, Some(self.session.allocator())) });
            }
        }
        ran.map_err(|e| Error::Inference(format!("{}: {e}", self.name)))?;
        if outputs.len() != self.output_names.len() {
            return Err(Error::Inference(format!(
                "{}: the run returned no value for an output",
                self.name
            )));
        }
        Ok(outputs)
    }

    /// The wrapped session (its inputs and outputs; never run it directly
    /// where lanes share it).
    pub fn session(&self) -> &ort::session::Session {
        &self.session
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joe() -> ConcurrentSession {
        crate::runtime::init(&Default::default()).expect("ONNX Runtime: run scripts/setup.sh");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/openvoice/base/en_US-joe-medium.onnx");
        let session = crate::runtime::load_session(&path, &Default::default())
            .expect("default voice: run scripts/setup.sh");
        ConcurrentSession::new(session, true, "joe").unwrap()
    }

    /// Inputs ONNX Runtime refuses come back as errors naming the model.
    #[test]
    fn a_refused_run_is_an_error_naming_the_model() {
        let s = joe();
        let options = crate::runtime::run_options().unwrap();
        let ids = ort::value::Tensor::from_array(([1usize, 3], vec![1i64, 8, 2]))
            .unwrap()
            .into_dyn();
        // `input_lengths` and `scales` are missing.
        let e = s.run(&[("input", &ids)], &options).unwrap_err();
        assert!(
            matches!(&e, Error::Inference(m) if m.starts_with("joe: ")),
            "{e:?}"
        );
        // A name the graph does not have.
        let e = s.run(&[("no_such_input", &ids)], &options).unwrap_err();
        assert!(
            matches!(&e, Error::Inference(m) if m.contains("no_such_input")),
            "{e:?}"
        );
        // A NUL byte in a name cannot reach the C API.
        let e = s.run(&[("in\0put", &ids)], &options).unwrap_err();
        assert!(matches!(&e, Error::Inference(m) if m.contains("NUL")), "{e:?}");
    }
}
