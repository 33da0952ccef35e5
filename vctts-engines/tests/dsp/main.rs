//! DSP integration tests of vctts-engines: conformance of the spectral
//! presets with upstream references, resampling quality, decoding of every
//! supported format and refusal of bad input, and the reference-clip front
//! end (VAD, preprocessing, quality, encoding) on real speech; the token
//! sampler in a toy generation loop.

mod common;
mod conformance;
mod decode;
mod front_end;
mod resample;
mod sampling;
