//! Word segmentation with part-of-speech tags as jieba_fast's `posseg.lcut`,
//! which upstream's `chinese2` calls: dictionary route (`jieba-rs`, the same
//! dictionary), then runs of single characters that are not a dictionary word
//! are cut and tagged by jieba's POS hidden Markov model (BMES × 64 tags, its
//! own probability tables, see `data/zh_posseg.txt.gz`), decoded with the same
//! Viterbi rules as `jieba/posseg/viterbi.py` (ties go to the larger state).
//!
//! `jieba-rs`'s own `tag` differs from this: it cuts unknown runs with the
//! plain BMES model and only guesses their tags with the POS model.

use std::collections::HashMap;
use std::sync::OnceLock;

const MIN_FLOAT: f64 = -3.14e100;

struct Hmm {
    /// (position B/M/E/S, tag), index order = Python tuple order
    states: Vec<(char, String)>,
    start: Vec<f64>,
    trans: Vec<HashMap<u16, f64>>,
    /// per character: the states `char_state_tab` allows and the emissions
    chars: HashMap<char, (Vec<u16>, HashMap<u16, f64>)>,
}

fn hmm() -> &'static Hmm {
    static H: OnceLock<Hmm> = OnceLock::new();
    H.get_or_init(|| {
        let text = crate::g2p::data::gunzip(include_bytes!("../data/zh_posseg.txt.gz"));
        let mut h = Hmm {
            states: Vec::new(),
            start: Vec::new(),
            trans: Vec::new(),
            chars: HashMap::new(),
        };
        let mut section = "";
        for line in text.lines() {
            if let Some(s) = line.strip_prefix('@') {
                section = match s {
                    "states" => "states",
                    "start" => "start",
                    "trans" => "trans",
                    _ => "chars",
                };
                if section == "start" {
                    h.start = vec![f64::NEG_INFINITY; h.states.len()];
                    h.trans = vec![HashMap::new(); h.states.len()];
                }
                continue;
            }
            match section {
                "states" => {
                    if let Some((p, t)) = line.split_once(' ') {
                        h.states.push((p.chars().next().unwrap_or('S'), t.to_string()));
                    }
                }
                "start" => {
                    let mut it = line.split(' ');
                    if let (Some(i), Some(v)) = (it.next(), it.next()) {
                        if let (Ok(i), Ok(v)) = (i.parse::<usize>(), v.parse::<f64>()) {
                            if i < h.start.len() {
                                h.start[i] = v;
                            }
                        }
                    }
                }
                "trans" => {
                    let v: Vec<&str> = line.split(' ').collect();
                    if let [a, b, p] = v.as_slice() {
                        if let (Ok(a), Ok(b), Ok(p)) =
                            (a.parse::<usize>(), b.parse::<u16>(), p.parse::<f64>())
                        {
                            if a < h.trans.len() {
                                h.trans[a].insert(b, p);
                            }
                        }
                    }
                }
                _ => {
                    let mut it = line.split('\t');
                    let (Some(c), Some(sts), Some(em)) = (it.next(), it.next(), it.next()) else {
                        continue;
                    };
                    let Some(ch) = c.chars().next() else { continue };
                    let sts: Vec<u16> = sts.split(' ').filter_map(|x| x.parse().ok()).collect();
                    let em: HashMap<u16, f64> = em
                        .split(' ')
                        .filter_map(|x| {
                            let (a, b) = x.split_once(':')?;
                            Some((a.parse().ok()?, b.parse().ok()?))
                        })
                        .collect();
                    h.chars.insert(ch, (sts, em));
                }
            }
        }
        h
    })
}

/// `viterbi(obs, char_state_tab, start, trans, emit)`: the best state per character.
fn viterbi(obs: &[char]) -> Vec<u16> {
    let h = hmm();
    let n_states = h.states.len() as u16;
    let all: Vec<u16> = (0..n_states).collect();
    let emit = |y: u16, c: char| -> f64 {
        h.chars
            .get(&c)
            .and_then(|(_, e)| e.get(&y).copied())
            .unwrap_or(MIN_FLOAT)
    };
    let allowed = |c: char| -> Vec<u16> {
        match h.chars.get(&c) {
            Some((s, _)) if !s.is_empty() => s.clone(),
            _ => all.clone(),
        }
    };
    let better = |a: (f64, u16), b: (f64, u16)| a.0 > b.0 || (a.0 == b.0 && a.1 > b.1);
    let mut v: Vec<HashMap<u16, f64>> = Vec::with_capacity(obs.len());
    let mut path: Vec<HashMap<u16, u16>> = Vec::with_capacity(obs.len());
    let mut v0 = HashMap::new();
    let mut p0 = HashMap::new();
    for y in allowed(obs[0]) {
        v0.insert(y, h.start[y as usize] + emit(y, obs[0]));
        p0.insert(y, u16::MAX);
    }
    v.push(v0);
    path.push(p0);
    for t in 1..obs.len() {
        let prev: Vec<u16> = path[t - 1]
            .keys()
            .copied()
            .filter(|x| !h.trans[*x as usize].is_empty())
            .collect();
        let mut expect: Vec<u16> = prev
            .iter()
            .flat_map(|x| h.trans[*x as usize].keys().copied())
            .collect();
        expect.sort_unstable();
        expect.dedup();
        let mut obs_states: Vec<u16> = allowed(obs[t])
            .into_iter()
            .filter(|y| expect.binary_search(y).is_ok())
            .collect();
        if obs_states.is_empty() {
            obs_states = if expect.is_empty() {
                all.clone()
            } else {
                expect.clone()
            };
        }
        let mut vt = HashMap::new();
        let mut pt = HashMap::new();
        for y in obs_states {
            let e = emit(y, obs[t]);
            let mut best: Option<(f64, u16)> = None;
            for &y0 in &prev {
                let tr = h.trans[y0 as usize].get(&y).copied().unwrap_or(f64::NEG_INFINITY);
                let cand = (v[t - 1][&y0] + tr + e, y0);
                if best.is_none_or(|b| better(cand, b)) {
                    best = Some(cand);
                }
            }
            if let Some((p, s)) = best {
                vt.insert(y, p);
                pt.insert(y, s);
            }
        }
        v.push(vt);
        path.push(pt);
    }
    let last = obs.len() - 1;
    let mut best: Option<(f64, u16)> = None;
    for y in path[last].keys() {
        let cand = (v[last][y], *y);
        if best.is_none_or(|b| better(cand, b)) {
            best = Some(cand);
        }
    }
    let mut route = vec![0u16; obs.len()];
    let mut state = best.map(|b| b.1).unwrap_or(0);
    for i in (0..obs.len()).rev() {
        route[i] = state;
        state = path[i].get(&state).copied().unwrap_or(0);
    }
    route
}

/// posseg's `__cut`: words and tags of a run of CJK characters from the HMM.
fn hmm_cut(s: &str, out: &mut Vec<(String, String)>) {
    let h = hmm();
    let c: Vec<char> = s.chars().collect();
    if c.is_empty() {
        return;
    }
    let route = viterbi(&c);
    let (mut begin, mut next) = (0usize, 0usize);
    for i in 0..c.len() {
        let (pos, tag) = &h.states[route[i] as usize];
        match pos {
            'B' => begin = i,
            'E' => {
                out.push((c[begin..=i].iter().collect(), tag.clone()));
                next = i + 1;
            }
            'S' => {
                out.push((c[i].to_string(), tag.clone()));
                next = i + 1;
            }
            _ => {}
        }
    }
    if next < c.len() {
        out.push((
            c[next..].iter().collect(),
            h.states[route[next] as usize].1.clone(),
        ));
    }
}

fn is_han_detail(c: char) -> bool {
    ('\u{4e00}'..='\u{9fd5}').contains(&c)
}

/// posseg's `__cut_detail` for a run of single characters.
fn cut_detail(buf: &str, out: &mut Vec<(String, String)>) {
    let mut run = String::new();
    let mut han = None::<bool>;
    let flush = |run: &mut String, han: bool, out: &mut Vec<(String, String)>| {
        if run.is_empty() {
            return;
        }
        if han {
            hmm_cut(run, out);
        } else {
            // re_skip_detail pieces: numbers/dots → m, ASCII alnum → eng, else x
            let mut piece = String::new();
            let mut kind = 0u8;
            let k = |c: char| {
                if c == '.' || c.is_ascii_digit() {
                    1
                } else if c.is_ascii_alphanumeric() {
                    2
                } else {
                    3
                }
            };
            let push = |piece: &mut String, kind: u8, out: &mut Vec<(String, String)>| {
                if !piece.is_empty() {
                    let tag = match kind {
                        1 => "m",
                        2 => "eng",
                        _ => "x",
                    };
                    out.push((std::mem::take(piece), tag.to_string()));
                }
            };
            for c in run.chars() {
                let ck = k(c);
                if ck != kind || ck == 3 {
                    push(&mut piece, kind, out);
                    kind = ck;
                }
                piece.push(c);
            }
            push(&mut piece, kind, out);
        }
        run.clear();
    };
    for c in buf.chars() {
        let h = is_han_detail(c);
        if han.is_some_and(|x| x != h) {
            flush(&mut run, han.unwrap_or(false), out);
        }
        han = Some(h);
        run.push(c);
    }
    if let Some(h) = han {
        flush(&mut run, h, out);
    }
}

fn dict_tag(word: &str) -> String {
    let j = super::jieba();
    if !j.has_word(word) {
        return "x".to_string();
    }
    let tags = j.tag(word, false);
    match tags.as_slice() {
        [t] => t.tag.to_string(),
        _ => "x".to_string(),
    }
}

fn flush_buf(buf: &mut String, out: &mut Vec<(String, String)>) {
    if buf.is_empty() {
        return;
    }
    let n = buf.chars().count();
    if n == 1 {
        out.push((buf.clone(), dict_tag(buf)));
    } else if !super::jieba().has_word(buf) {
        cut_detail(buf, out);
    } else {
        for c in buf.chars() {
            let s = c.to_string();
            let t = dict_tag(&s);
            out.push((s, t));
        }
    }
    buf.clear();
}

/// posseg's `__cut_DAG` for one block.
fn cut_dag(block: &str, out: &mut Vec<(String, String)>) {
    let mut buf = String::new();
    for tok in super::jieba().cut(block, false) {
        let w = tok.word;
        if w.chars().count() == 1 {
            buf.push_str(w);
        } else {
            flush_buf(&mut buf, out);
            out.push((w.to_string(), dict_tag(w)));
        }
    }
    flush_buf(&mut buf, out);
}

fn is_block_char(c: char) -> bool {
    ('\u{4e00}'..='\u{9fd5}').contains(&c) || c.is_ascii_alphanumeric() || "+#&._".contains(c)
}

/// `jieba_fast.posseg.lcut(text)` (HMM on).
pub(crate) fn lcut(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut block = String::new();
    for c in text.chars() {
        if is_block_char(c) {
            block.push(c);
            continue;
        }
        if !block.is_empty() {
            cut_dag(&block, &mut out);
            block.clear();
        }
        let tag = if c.is_whitespace() {
            "x"
        } else if c == '.' || c.is_ascii_digit() {
            "m"
        } else {
            "x"
        };
        out.push((c.to_string(), tag.to_string()));
    }
    if !block.is_empty() {
        cut_dag(&block, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(t: &str) -> String {
        lcut(t)
            .into_iter()
            .map(|(w, p)| format!("{w}/{p}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn unknown_runs_go_through_the_pos_hmm() {
        assert_eq!(show("这条河很长,"), "这条/mq 河/n 很/d 长/a ,/x");
        assert_eq!(
            show("我们的队长也长高了."),
            "我们/r 的/uj 队长/n 也/d 长/a 高/a 了/ul ./m"
        );
        assert_eq!(show("时间过得真快啊."), "时间/n 过/ug 得/ud 真/d 快/a 啊/y ./m");
        assert_eq!(
            show("这座楼有一百二十米高."),
            "这/r 座楼/n 有/v 一百二十/m 米/m 高/a ./m"
        );
        assert_eq!(show("风吹过来,"), "风/n 吹过来/l ,/x");
        assert_eq!(show("很凉快."), "很/zg 凉快/a ./x");
    }
}
