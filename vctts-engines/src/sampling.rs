//! Seeded next-token sampling for the autoregressive engines (XTTS GPT,
//! GPT-SoVITS T2S).
//!
//! One [`Sampler`] per generation: it owns a ChaCha8 generator seeded by the
//! caller, so the same seed, logits and history give the same tokens on
//! every machine. The pipeline per step is:
//!
//! 1. NaN logits become `-inf`;
//! 2. repetition penalty over the distinct tokens of `history` (a negative
//!    logit is multiplied by the penalty, a positive one divided), as HF
//!    `RepetitionPenaltyLogitsProcessor` and GPT-SoVITS do;
//! 3. the stop token is masked (`-inf`) while `step < min_steps_before_stop`;
//! 4. greedy (or temperature ≤ 0): the arg-max, first index on ties;
//! 5. otherwise the filters in the sampler's [`FilterOrder`] (by default
//!    top-k, then top-p over the top-k renormalised distribution keeping at
//!    least one token, then temperature), softmax and one inverse-CDF draw.
//!
//! Invariants: `logits` is modified in place (it holds the penalised, masked
//! logits afterwards); a step allocates nothing once the sampler has seen
//! the vocabulary size; a draw never returns a token whose logit was `-inf`
//! unless every logit was.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vctts_core::{Error, Result};

/// Sampling parameters of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingConfig {
    /// Softmax temperature; `<= 0` means greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (`None` or `Some(0)`: all).
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches
    /// `p` (`None` or `>= 1`: all; at least one token is always kept).
    pub top_p: Option<f32>,
    /// Repetition penalty (`1.0`: none; `> 1` discourages repeats).
    pub repetition_penalty: f32,
    /// The stop token is masked while `step` is below this.
    pub min_steps_before_stop: usize,
    /// The token that ends generation, if the model has one.
    pub stop_token: Option<u32>,
    /// Always take the arg-max after penalty and masks.
    pub greedy: bool,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: None,
            top_p: None,
            repetition_penalty: 1.0,
            min_steps_before_stop: 0,
            stop_token: None,
            greedy: false,
        }
    }
}

impl SamplingConfig {
    /// Checks values that came from a request: finite temperature ≥ 0,
    /// `0 < top_p <= 1`, finite penalty > 0.
    pub fn validate(&self) -> Result<()> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(Error::invalid(
                "temperature",
                format!("must be a finite number >= 0, got {}", self.temperature),
            ));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::invalid("top_p", format!("must be in (0, 1], got {p}")));
            }
        }
        if !self.repetition_penalty.is_finite() || self.repetition_penalty <= 0.0 {
            return Err(Error::invalid(
                "repetition_penalty",
                format!("must be a finite number > 0, got {}", self.repetition_penalty),
            ));
        }
        Ok(())
    }
}

/// The order of the truncation filters and the temperature. They commute
/// except for top-p, whose nucleus depends on what came before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterOrder {
    /// Top-k, top-p (on the top-k renormalised probabilities at temperature
    /// 1), then temperature.
    #[default]
    TopKTopPTemperature,
    /// Temperature, top-k, top-p: the HF `generate` warper order (XTTS).
    TemperatureTopKTopP,
    /// Top-p on the full distribution, temperature, top-k: GPT-SoVITS
    /// `logits_to_probs`.
    TopPTemperatureTopK,
}

/// A seeded sampler. Not shared between generations.
#[derive(Debug, Clone)]
pub struct Sampler {
    cfg: SamplingConfig,
    order: FilterOrder,
    rng: ChaCha8Rng,
    /// Reused per step: which tokens the history holds.
    seen: Vec<bool>,
    /// Reused per step: candidate token ids, sorted by logit.
    order_buf: Vec<u32>,
    /// Reused per step: candidate probabilities.
    probs: Vec<f32>,
}

impl Sampler {
    /// A sampler with its own generator seeded by `seed`.
    ///
    /// Out-of-range values are read leniently (a non-finite or non-positive
    /// penalty acts as 1, a non-finite temperature as greedy); call
    /// [`SamplingConfig::validate`] on values from a request first.
    pub fn new(cfg: SamplingConfig, seed: u64) -> Self {
        Self {
            cfg,
            order: FilterOrder::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            seen: Vec::new(),
            order_buf: Vec::new(),
            probs: Vec::new(),
        }
    }

    /// The same sampler with another filter order.
    pub fn with_order(mut self, order: FilterOrder) -> Self {
        self.order = order;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SamplingConfig {
        &self.cfg
    }

    /// Picks the next token.
    ///
    /// `history` is every token the penalty should see (the prompt included
    /// where upstream does so); `step` counts generated tokens from 0. When
    /// no token can be drawn (empty logits, or every logit NaN or `-inf`
    /// after the masks) this returns the stop token, or 0 without one, so a
    /// generation loop ends; [`Sampler::try_sample`] reports that instead.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32], step: usize) -> u32 {
        match self.try_sample(logits, history, step) {
            Ok(t) => t,
            Err(_) => self.cfg.stop_token.unwrap_or(0),
        }
    }

    /// Like [`Sampler::sample`], but fails with [`Error::Inference`] when no
    /// token can be drawn.
    pub fn try_sample(&mut self, logits: &mut [f32], history: &[u32], step: usize) -> Result<u32> {
        if logits.is_empty() {
            return Err(Error::Inference("the model returned no logits".into()));
        }
        for l in logits.iter_mut() {
            if l.is_nan() {
                *l = f32::NEG_INFINITY;
            }
        }
        self.apply_repetition_penalty(logits, history);
        if let Some(stop) = self.cfg.stop_token {
            if step < self.cfg.min_steps_before_stop {
                if let Some(l) = logits.get_mut(stop as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        let best = argmax(logits);
        if logits[best] == f32::NEG_INFINITY {
            return Err(Error::Inference(
                "every logit is -inf or NaN after the masks; no token can be sampled".into(),
            ));
        }
        let t = self.cfg.temperature;
        if self.cfg.greedy || !t.is_finite() || t <= 0.0 {
            return Ok(best as u32);
        }
        Ok(self.draw(logits))
    }

    fn apply_repetition_penalty(&mut self, logits: &mut [f32], history: &[u32]) {
        let p = self.cfg.repetition_penalty;
        if !p.is_finite() || p <= 0.0 || p == 1.0 || history.is_empty() {
            return;
        }
        self.seen.clear();
        self.seen.resize(logits.len(), false);
        for &tok in history {
            let i = tok as usize;
            if i >= logits.len() || self.seen[i] {
                continue;
            }
            self.seen[i] = true;
            let l = &mut logits[i];
            *l = if *l < 0.0 { *l * p } else { *l / p };
        }
    }

    /// Filters, softmax and one draw over the finite logits.
    fn draw(&mut self, logits: &[f32]) -> u32 {
        let cand = &mut self.order_buf;
        cand.clear();
        cand.extend((0..logits.len() as u32).filter(|&i| logits[i as usize] > f32::NEG_INFINITY));
        // Descending by logit, ties by index: deterministic.
        cand.sort_unstable_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b)));

        let k = match self.cfg.top_k {
            Some(k) if k > 0 => k,
            _ => usize::MAX,
        };
        let p = self.cfg.top_p.filter(|p| p.is_finite() && *p < 1.0);
        let temp = self.cfg.temperature;
        let mut kept = cand.len();
        match self.order {
            FilterOrder::TopKTopPTemperature => {
                kept = kept.min(k);
                if let Some(p) = p {
                    kept = nucleus(logits, &cand[..kept], 1.0, p, &mut self.probs);
                }
            }
            FilterOrder::TemperatureTopKTopP => {
                kept = kept.min(k);
                if let Some(p) = p {
                    kept = nucleus(logits, &cand[..kept], temp, p, &mut self.probs);
                }
            }
            FilterOrder::TopPTemperatureTopK => {
                if let Some(p) = p {
                    kept = nucleus(logits, &cand[..kept], 1.0, p, &mut self.probs);
                }
                kept = kept.min(k);
            }
        }
        let cand = &cand[..kept.max(1)];
        softmax_into(logits, cand, temp, &mut self.probs);
        let u: f32 = self.rng.random::<f32>();
        let mut acc = 0.0f32;
        for (&tok, &pr) in cand.iter().zip(&self.probs) {
            acc += pr;
            if u < acc {
                return tok;
            }
        }
        // Rounding left the cumulative sum just under u: take the last
        // candidate with non-zero probability.
        cand.iter()
            .zip(&self.probs)
            .rev()
            .find(|(_, p)| **p > 0.0)
            .map_or(cand[0], |(t, _)| *t)
    }
}

/// Index of the largest value, the first one on ties (`-inf` everywhere
/// gives 0).
fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// Softmax of `logits[cand] / temp` into `probs` (same order as `cand`).
fn softmax_into(logits: &[f32], cand: &[u32], temp: f32, probs: &mut Vec<f32>) {
    probs.clear();
    let Some(&first) = cand.first() else {
        return;
    };
    let max = logits[first as usize] / temp;
    let mut sum = 0.0f64;
    probs.extend(cand.iter().map(|&i| {
        let e = ((logits[i as usize] / temp) - max).exp();
        sum += e as f64;
        e
    }));
    let inv = (1.0 / sum) as f32;
    for p in probs.iter_mut() {
        *p *= inv;
    }
}

/// How many of the sorted candidates form the nucleus of mass `p`: token
/// `i` stays while the mass before it is below `p`; at least one stays.
fn nucleus(logits: &[f32], cand: &[u32], temp: f32, p: f32, probs: &mut Vec<f32>) -> usize {
    softmax_into(logits, cand, temp, probs);
    let mut before = 0.0f32;
    for (i, &pr) in probs.iter().enumerate() {
        if i > 0 && before >= p {
            return i;
        }
        before += pr;
    }
    cand.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SamplingConfig {
        SamplingConfig::default()
    }

    #[test]
    fn same_seed_same_tokens_other_seed_differs() {
        let run = |seed| {
            let mut s = Sampler::new(cfg(), seed);
            (0..64)
                .map(|step| {
                    let mut l = vec![0.0f32; 50];
                    s.sample(&mut l, &[], step)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn greedy_takes_argmax_first_on_ties() {
        let mut s = Sampler::new(
            SamplingConfig {
                greedy: true,
                ..cfg()
            },
            0,
        );
        assert_eq!(s.sample(&mut [1.0, 3.0, 3.0, -1.0], &[], 0), 1);
        let mut s = Sampler::new(
            SamplingConfig {
                temperature: 0.0,
                ..cfg()
            },
            0,
        );
        assert_eq!(s.sample(&mut [0.0, 0.5, f32::NAN], &[], 0), 1);
    }

    #[test]
    fn repetition_penalty_divides_positive_multiplies_negative_once() {
        let mut s = Sampler::new(
            SamplingConfig {
                repetition_penalty: 2.0,
                greedy: true,
                ..cfg()
            },
            0,
        );
        let mut l = [4.0, -1.0, 3.0];
        // Token 0 twice in history: penalised once.
        let t = s.sample(&mut l, &[0, 0, 1, 99], 0);
        assert_eq!(l, [2.0, -2.0, 3.0]);
        assert_eq!(t, 2);
    }

    #[test]
    fn stop_token_masked_before_min_steps() {
        let c = SamplingConfig {
            greedy: true,
            stop_token: Some(2),
            min_steps_before_stop: 3,
            ..cfg()
        };
        let mut s = Sampler::new(c, 0);
        assert_eq!(s.sample(&mut [0.0, 1.0, 9.0], &[], 2), 1);
        assert_eq!(s.sample(&mut [0.0, 1.0, 9.0], &[], 3), 2);
    }

    #[test]
    fn top_k_one_is_argmax() {
        let c = SamplingConfig {
            top_k: Some(1),
            ..cfg()
        };
        let mut s = Sampler::new(c, 3);
        for step in 0..100 {
            assert_eq!(s.sample(&mut [0.1, 0.2, 0.15, 0.0], &[], step), 1);
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        // probs ~ [0.64, 0.24, 0.09, 0.03]: p = 0.8 keeps tokens 0 and 1.
        let logits = [2.0f32, 1.0, 0.0, -1.2];
        let c = SamplingConfig {
            top_p: Some(0.8),
            ..cfg()
        };
        let mut s = Sampler::new(c, 11);
        let mut counts = [0usize; 4];
        for step in 0..4000 {
            let mut l = logits;
            counts[s.sample(&mut l, &[], step) as usize] += 1;
        }
        assert_eq!(counts[2] + counts[3], 0, "{counts:?}");
        // Renormalised: 0.64 / 0.88 = 0.727 for token 0.
        let f0 = counts[0] as f32 / 4000.0;
        assert!((f0 - 0.727).abs() < 0.03, "{f0}");
        // A tiny p still keeps one token.
        let mut s = Sampler::new(
            SamplingConfig {
                top_p: Some(1e-6),
                ..cfg()
            },
            1,
        );
        assert_eq!(s.sample(&mut logits.clone(), &[], 0), 0);
    }

    #[test]
    fn empirical_distribution_follows_temperature() {
        let logits = [0.0f32, 2f32.ln()]; // probs 1/3, 2/3 at T = 1
        for (temp, expect) in [(1.0f32, 2.0 / 3.0), (0.5, 0.8)] {
            let mut s = Sampler::new(
                SamplingConfig {
                    temperature: temp,
                    ..cfg()
                },
                5,
            );
            let n = 20000;
            let ones = (0..n)
                .filter(|&i| s.sample(&mut logits.clone(), &[], i) == 1)
                .count();
            let f = ones as f32 / n as f32;
            assert!((f - expect).abs() < 0.015, "T {temp}: {f} vs {expect}");
        }
    }

    #[test]
    fn filter_orders_differ_where_upstream_does() {
        // Top-k 2 then top-p 0.6: renormalised [0.5, 0.5] -> nucleus needs both.
        // Top-p 0.6 on the full distribution [0.4, 0.4, 0.2] also keeps both;
        // with p = 0.45 the GPT-SoVITS order keeps 2 while top-k-first keeps 1.
        let logits = [0.0f32, 0.0, -(2f32.ln())];
        let c = SamplingConfig {
            top_k: Some(2),
            top_p: Some(0.45),
            ..cfg()
        };
        let mut probs = Vec::new();
        let cand = [0u32, 1, 2];
        assert_eq!(nucleus(&logits, &cand, 1.0, 0.45, &mut probs), 2);
        assert_eq!(nucleus(&logits, &cand[..2], 1.0, 0.45, &mut probs), 1);
        let mut a = Sampler::new(c.clone(), 9);
        let seen: std::collections::HashSet<u32> =
            (0..200).map(|i| a.sample(&mut logits.clone(), &[], i)).collect();
        assert_eq!(seen.len(), 1);
        let mut b = Sampler::new(c, 9).with_order(FilterOrder::TopPTemperatureTopK);
        let seen: std::collections::HashSet<u32> =
            (0..200).map(|i| b.sample(&mut logits.clone(), &[], i)).collect();
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn nothing_to_draw_is_reported() {
        let c = SamplingConfig {
            stop_token: Some(1),
            min_steps_before_stop: 5,
            ..cfg()
        };
        let mut s = Sampler::new(c, 0);
        let mut l = [f32::NEG_INFINITY, 3.0];
        assert!(s.try_sample(&mut l, &[], 0).is_err());
        assert_eq!(s.sample(&mut [f32::NAN, 3.0], &[], 0), 1);
        assert!(s.try_sample(&mut [], &[], 0).is_err());
    }

    #[test]
    fn masked_tokens_are_never_drawn() {
        let mut s = Sampler::new(cfg(), 2);
        for step in 0..500 {
            let mut l = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0];
            let t = s.sample(&mut l, &[], step);
            assert!(t == 1 || t == 3);
        }
    }

    #[test]
    fn validate_rejects_bad_values() {
        assert!(cfg().validate().is_ok());
        for bad in [
            SamplingConfig {
                temperature: f32::NAN,
                ..cfg()
            },
            SamplingConfig {
                top_p: Some(0.0),
                ..cfg()
            },
            SamplingConfig {
                repetition_penalty: -1.0,
                ..cfg()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
