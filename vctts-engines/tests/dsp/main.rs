//! DSP integration tests of vctts-engines: conformance of the spectral
//! presets with upstream references, resampling quality, decoding of every
//! supported format and refusal of bad input.

mod common;
mod conformance;
mod decode;
mod resample;
