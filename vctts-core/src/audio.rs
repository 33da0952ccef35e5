//! Audio as vctts passes it around: mono `f32` samples in `[-1, 1]` at a
//! sample rate. Decoding, resampling and encoding live in `vctts-engines`.

use std::time::Duration;

/// A mono clip of `f32` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples, nominally in `[-1, 1]`.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

impl Audio {
    /// A clip from samples and a rate.
    pub fn new(samples: Vec<f32>, sample_rate: u32) -> Self {
        Self { samples, sample_rate }
    }

    /// `seconds` of silence.
    pub fn silence(seconds: f32, sample_rate: u32) -> Self {
        let n = (seconds.max(0.0) * sample_rate as f32).round() as usize;
        Self {
            samples: vec![0.0; n],
            sample_rate,
        }
    }

    /// Length in seconds.
    pub fn duration(&self) -> Duration {
        if self.sample_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.samples.len() as f64 / self.sample_rate as f64)
    }

    /// Whether the clip has no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Largest absolute sample value.
    pub fn peak(&self) -> f32 {
        self.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()))
    }

    /// Root mean square of the samples (0 for an empty clip).
    pub fn rms(&self) -> f32 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let sum: f64 = self.samples.iter().map(|&s| (s as f64) * (s as f64)).sum();
        (sum / self.samples.len() as f64).sqrt() as f32
    }

    /// Appends another clip of the same rate.
    ///
    /// # Panics
    /// Never; a clip of another rate is a programming error reported by
    /// `debug_assert` and appended as is in release builds.
    pub fn append(&mut self, other: &Audio) {
        debug_assert_eq!(
            self.sample_rate, other.sample_rate,
            "appending audio of another rate"
        );
        self.samples.extend_from_slice(&other.samples);
    }
}

/// One piece of a streamed synthesis, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioChunk {
    /// Position of this chunk in the stream, from 0.
    pub index: usize,
    /// The samples of this chunk.
    pub audio: Audio,
    /// Whether this is the last chunk of the stream.
    pub is_last: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_peak_rms() {
        let a = Audio::new(vec![0.5, -1.0, 0.0, 0.5], 4);
        assert_eq!(a.duration(), Duration::from_secs(1));
        assert_eq!(a.peak(), 1.0);
        assert!((a.rms() - (1.5f32 / 4.0).sqrt()).abs() < 1e-6);
        assert_eq!(Audio::new(vec![], 0).duration(), Duration::ZERO);
        assert_eq!(Audio::silence(0.5, 10).samples.len(), 5);
    }
}
