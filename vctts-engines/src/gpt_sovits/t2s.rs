//! The T2S autoregressive loop: prefill, then one step per token with the
//! KV cache held here, sampling in Rust with upstream's rules.
//!
//! Per step (GPT-SoVITS `infer_panel_naive` + `logits_to_probs`):
//! - the repetition penalty sees every earlier semantic token, the prompt
//!   codes included;
//! - EOS (1024) is masked for the first [`MIN_STEPS_BEFORE_EOS`] steps;
//! - filters in upstream's order: top-p, temperature, top-k
//!   ([`FilterOrder::TopPTemperatureTopK`]);
//! - generation stops when the sampled token is EOS or when the arg-max of
//!   the penalised logits is EOS; the token of that step is dropped (as
//!   upstream keeps only the tokens before the stopping step), or after
//!   `max_steps` tokens.
//!
//! Positions: the prompt codes sit at 0..P-1; the token generated at step
//! `k` is fed back at position `P + k` (PyTorch's 0-based positions).
//!
//! Invariant: the same seed, graphs and inputs give the same tokens.

use super::model::{Graphs, KvCache};
use crate::sampling::{FilterOrder, Sampler, SamplingConfig};
use vctts_core::{Error, Result, SamplingParams};

/// Upstream masks EOS while `idx < 11`.
pub const MIN_STEPS_BEFORE_EOS: usize = 11;
/// Upstream's cap on generated tokens per segment (60 s at 25 tokens/s).
pub const MAX_STEPS: usize = 1500;

/// Sampling settings of one generation (api_v2 defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct T2sParams {
    /// Keep the k most likely tokens (15).
    pub top_k: usize,
    /// Nucleus mass (1.0: off).
    pub top_p: f32,
    /// Temperature (1.0).
    pub temperature: f32,
    /// Repetition penalty over all earlier tokens (1.35).
    pub repetition_penalty: f32,
    /// Most tokens per segment.
    pub max_steps: usize,
}

impl Default for T2sParams {
    fn default() -> Self {
        Self {
            top_k: 15,
            top_p: 1.0,
            temperature: 1.0,
            repetition_penalty: 1.35,
            max_steps: MAX_STEPS,
        }
    }
}

impl T2sParams {
    /// The defaults overridden by a request's values, checked.
    pub fn from_request(s: &SamplingParams, max_steps: usize) -> Result<Self> {
        let d = Self::default();
        let p = Self {
            top_k: s.top_k.unwrap_or(d.top_k),
            top_p: s.top_p.unwrap_or(d.top_p),
            temperature: s.temperature.unwrap_or(d.temperature),
            repetition_penalty: s.repetition_penalty.unwrap_or(d.repetition_penalty),
            max_steps,
        };
        p.sampling_config(1024).validate()?;
        if p.top_k == 0 {
            return Err(Error::invalid("top_k", "must be at least 1"));
        }
        Ok(p)
    }

    fn sampling_config(&self, eos: u32) -> SamplingConfig {
        SamplingConfig {
            temperature: self.temperature,
            top_k: Some(self.top_k),
            top_p: Some(self.top_p),
            repetition_penalty: self.repetition_penalty,
            min_steps_before_stop: MIN_STEPS_BEFORE_EOS,
            stop_token: Some(eos),
            greedy: false,
        }
    }
}

/// One generation in progress: the cache, the sampler and the tokens so
/// far. Drive it with [`Generation::next`]; the caller may run other graphs
/// between steps (streaming decodes audio while tokens come).
pub struct Generation {
    sampler: Sampler,
    history: Vec<u32>,
    prompt_len: usize,
    logits: Vec<f32>,
    cache: KvCache,
    step: usize,
    max_steps: usize,
    eos: u32,
    done: bool,
    /// The tokens generated so far (never EOS).
    pub tokens: Vec<u32>,
}

impl Generation {
    /// Runs the prefill over the text side `x` and the prompt codes.
    pub fn start(
        graphs: &mut Graphs,
        x: &[f32],
        prompts: &[i64],
        params: &T2sParams,
        seed: u64,
    ) -> Result<Self> {
        let eos = graphs.meta.eos;
        let history: Vec<u32> = prompts
            .iter()
            .map(|&p| u32::try_from(p).map_err(|_| Error::Inference(format!("prompt code {p} is negative"))))
            .collect::<Result<_>>()?;
        let (logits, cache) = graphs.prefill(x, prompts)?;
        Ok(Self {
            sampler: Sampler::new(params.sampling_config(eos), seed)
                .with_order(FilterOrder::TopPTemperatureTopK),
            prompt_len: history.len(),
            history,
            logits,
            cache,
            step: 0,
            max_steps: params.max_steps,
            eos,
            done: params.max_steps == 0,
            tokens: Vec::new(),
        })
    }

    /// The next token, or `None` once the generation has ended.
    pub fn next(&mut self, graphs: &mut Graphs) -> Result<Option<u32>> {
        if self.done {
            return Ok(None);
        }
        if self.step > 0 {
            let last = *self
                .tokens
                .last()
                .ok_or_else(|| Error::Internal("no token to feed".into()))?;
            self.logits = graphs.step(last, self.prompt_len + self.step - 1, &mut self.cache)?;
        }
        let token = self
            .sampler
            .try_sample(&mut self.logits, &self.history, self.step)?;
        // `logits` now holds the penalised, masked logits, as upstream's
        // in-place penalty leaves them for its arg-max test.
        if token == self.eos || argmax(&self.logits) == self.eos as usize {
            self.done = true;
            return Ok(None);
        }
        self.tokens.push(token);
        self.history.push(token);
        self.step += 1;
        if self.step >= self.max_steps {
            self.done = true;
        }
        Ok(Some(token))
    }
}

/// Generates all tokens of one segment.
pub fn generate(
    graphs: &mut Graphs,
    x: &[f32],
    prompts: &[i64],
    params: &T2sParams,
    seed: u64,
) -> Result<Vec<u32>> {
    let mut g = Generation::start(graphs, x, prompts, params, seed)?;
    while g.next(graphs)?.is_some() {}
    Ok(g.tokens)
}

fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_values_override_the_api_v2_defaults() {
        let d = T2sParams::default();
        assert_eq!(
            (d.top_k, d.top_p, d.temperature, d.repetition_penalty),
            (15, 1.0, 1.0, 1.35)
        );
        let s = SamplingParams {
            top_k: Some(5),
            temperature: Some(0.7),
            ..SamplingParams::default()
        };
        let p = T2sParams::from_request(&s, 100).unwrap();
        assert_eq!((p.top_k, p.temperature, p.top_p, p.max_steps), (5, 0.7, 1.0, 100));
        let bad = SamplingParams {
            top_p: Some(1.5),
            ..SamplingParams::default()
        };
        assert_eq!(
            T2sParams::from_request(&bad, 10).unwrap_err().code(),
            "invalid_input"
        );
        let zero = SamplingParams {
            top_k: Some(0),
            ..SamplingParams::default()
        };
        assert!(T2sParams::from_request(&zero, 10).is_err());
    }

    #[test]
    fn the_sampler_masks_eos_early_as_upstream() {
        let p = T2sParams::default();
        let mut s = Sampler::new(p.sampling_config(4), 1).with_order(FilterOrder::TopPTemperatureTopK);
        for step in 0..MIN_STEPS_BEFORE_EOS {
            let mut l = vec![0.0, 0.0, 0.0, 0.0, 50.0];
            assert_ne!(s.sample(&mut l, &[], step), 4);
        }
        let mut l = vec![0.0, 0.0, 0.0, 0.0, 50.0];
        assert_eq!(s.sample(&mut l, &[], MIN_STEPS_BEFORE_EOS), 4);
    }
}
