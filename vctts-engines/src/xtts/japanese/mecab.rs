//! A MeCab-compatible morphological analyzer over a compiled MeCab
//! dictionary folder (a `dicdir`: `sys.dic`, `unk.dic`, `matrix.bin`,
//! `char.bin`), as the PyPI package `unidic-lite` ships it.
//!
//! It reproduces what MeCab 0.996 computes for one sentence (the path
//! fugashi's `Tagger.__call__` returns): dictionary words from the
//! double-array trie (`commonPrefixSearch` over UTF-8 bytes), MeCab's
//! unknown-word rules (the character category of the first character after
//! any spaces; `invoke`, `group` up to 24 characters, `length` 1..n), the
//! connection costs of `matrix.bin` and a Viterbi search with MeCab's
//! tie-breaking (nodes visited in MeCab's linked-list order, strict `<`).
//!
//! Binary formats (little-endian, MeCab `DIC_VERSION` 102), as MeCab reads them:
//! - `sys.dic`/`unk.dic`: ten `u32` (magic = file size ^ 0xef718f77, version,
//!   type, lexicon size, left/right id counts, double-array bytes, token bytes,
//!   feature bytes, unused), a 32-byte charset name, the double array (units
//!   of `i32 base`, `u32 check`), tokens (`u16 left id`, `u16 right id`,
//!   `u16 pos id`, `i16 word cost`, `u32 feature offset`, `u32 compound`) and
//!   NUL-terminated feature strings. A trie value is `first token << 8 | count`.
//! - `matrix.bin`: `u16 lsize`, `u16 rsize`, then `i16` costs at
//!   `left.right_id + lsize * right.left_id`.
//! - `char.bin`: `u32` category count, 32-byte category names, then one `u32`
//!   per UCS-2 code (0..0xFFFE): bits 0..18 category set, 18..26 default
//!   category, 26..30 length, bit 30 group, bit 31 invoke. Characters outside
//!   the BMP use code 0, as MeCab's `utf8_to_ucs2` does.
//!
//! Invariants: every file is read once into memory and checked (sizes,
//! magic, version, bounds) at [`Analyzer::open`]; analysis never panics on
//! any input and never reads outside the buffers (all trie and table reads
//! are bounds-checked and a corrupt dictionary only loses candidates).

use std::path::Path;
use vctts_core::{Error, Result};

const MAGIC: u32 = 0xef71_8f77;
const DIC_VERSION: u32 = 102;
const MAX_GROUPING_SIZE: usize = 24;
/// MeCab looks at most this many bytes ahead of a position.
const MAX_LOOKAHEAD: usize = 65535;

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    b.get(off..off + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn load_err(file: &Path, what: impl std::fmt::Display) -> Error {
    Error::ModelLoad(format!("MeCab dictionary {}: {what}", file.display()))
}

/// One entry of a dictionary's token table.
#[derive(Clone, Copy, Debug)]
struct Token {
    left: u16,
    right: u16,
    cost: i16,
    feature: u32,
}

/// A compiled dictionary (`sys.dic` or `unk.dic`).
struct Dic {
    bytes: Vec<u8>,
    da: std::ops::Range<usize>,
    tokens: std::ops::Range<usize>,
    features: std::ops::Range<usize>,
}

impl Dic {
    fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| load_err(path, format!("cannot read: {e}")))?;
        let head = |i: usize| u32_at(&bytes, 4 * i).ok_or_else(|| load_err(path, "file too short"));
        if bytes.len() < 100 {
            return Err(load_err(path, "file too short"));
        }
        if (head(0)? ^ MAGIC) as usize != bytes.len() {
            return Err(load_err(path, "not a compiled MeCab dictionary (bad magic)"));
        }
        if head(1)? != DIC_VERSION {
            return Err(load_err(
                path,
                format!("version {} (expected {DIC_VERSION})", head(1)?),
            ));
        }
        let (dsize, tsize, fsize) = (head(6)? as usize, head(7)? as usize, head(8)? as usize);
        let charset_end = 40 + 32;
        let charset = &bytes[40..charset_end];
        let charset = String::from_utf8_lossy(charset.split(|b| *b == 0).next().unwrap_or(&[]));
        if !charset.eq_ignore_ascii_case("utf8") && !charset.eq_ignore_ascii_case("utf-8") {
            return Err(load_err(
                path,
                format!("charset {charset}, only UTF-8 is supported"),
            ));
        }
        let da = charset_end..charset_end + dsize;
        let tokens = da.end..da.end + tsize;
        let features = tokens.end..tokens.end + fsize;
        if features.end != bytes.len() || dsize % 8 != 0 || tsize % 16 != 0 {
            return Err(load_err(path, "section sizes do not add up to the file size"));
        }
        Ok(Self {
            bytes,
            da,
            tokens,
            features,
        })
    }

    /// `(base, check)` of a double-array unit, `None` past the end.
    fn unit(&self, i: usize) -> Option<(i32, u32)> {
        let off = self.da.start + i.checked_mul(8)?;
        if off + 8 > self.da.end {
            return None;
        }
        Some((u32_at(&self.bytes, off)? as i32, u32_at(&self.bytes, off + 4)?))
    }

    /// The trie value ending at node `b`, if a key ends there.
    fn value_at(&self, b: i32) -> Option<i32> {
        let (n, check) = self.unit(usize::try_from(b).ok()?)?;
        (check == b as u32 && n < 0).then_some(-n - 1)
    }

    fn next(&self, b: i32, byte: u8) -> Option<i32> {
        let p = usize::try_from(b).ok()? + byte as usize + 1;
        let (base, check) = self.unit(p)?;
        (check == b as u32).then_some(base)
    }

    /// Darts' `commonPrefixSearch`: `(value, key length)` of every prefix of
    /// `key` in the trie, shortest first.
    fn common_prefix_search(&self, key: &[u8], out: &mut Vec<(i32, usize)>) {
        out.clear();
        let Some((mut b, _)) = self.unit(0) else { return };
        for (i, &byte) in key.iter().enumerate() {
            if let Some(v) = self.value_at(b) {
                out.push((v, i));
            }
            match self.next(b, byte) {
                Some(nb) => b = nb,
                None => return,
            }
        }
        if let Some(v) = self.value_at(b) {
            out.push((v, key.len()));
        }
    }

    fn exact_match(&self, key: &[u8]) -> Option<i32> {
        let (mut b, _) = self.unit(0)?;
        for &byte in key {
            b = self.next(b, byte)?;
        }
        self.value_at(b)
    }

    fn token(&self, i: usize) -> Option<Token> {
        let off = self.tokens.start + i.checked_mul(16)?;
        if off + 16 > self.tokens.end {
            return None;
        }
        Some(Token {
            left: u16_at(&self.bytes, off)?,
            right: u16_at(&self.bytes, off + 2)?,
            cost: u16_at(&self.bytes, off + 6)? as i16,
            feature: u32_at(&self.bytes, off + 8)?,
        })
    }

    /// The tokens of a trie value.
    fn tokens_of(&self, value: i32) -> impl Iterator<Item = Token> + '_ {
        let first = (value as u32 >> 8) as usize;
        let count = (value as u32 & 0xff) as usize;
        (first..first + count).filter_map(|i| self.token(i))
    }

    fn feature(&self, off: u32) -> &str {
        let start = self.features.start + off as usize;
        let tail = self.bytes.get(start..self.features.end).unwrap_or(&[]);
        let s = tail.split(|b| *b == 0).next().unwrap_or(&[]);
        std::str::from_utf8(s).unwrap_or("")
    }
}

/// MeCab's `CharInfo` of one character.
#[derive(Clone, Copy, Debug, Default)]
struct CharInfo {
    kinds: u32,
    default_type: u8,
    length: u8,
    group: bool,
    invoke: bool,
}

impl CharInfo {
    fn from_bits(v: u32) -> Self {
        Self {
            kinds: v & 0x3ffff,
            default_type: ((v >> 18) & 0xff) as u8,
            length: ((v >> 26) & 0xf) as u8,
            group: (v >> 30) & 1 == 1,
            invoke: (v >> 31) & 1 == 1,
        }
    }

    fn is_kind_of(&self, other: CharInfo) -> bool {
        self.kinds & other.kinds != 0
    }
}

/// Which dictionary a lattice node's token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Sys,
    Unk,
    BosEos,
}

#[derive(Clone, Debug)]
struct Node {
    /// Byte offset where the lookup started (before leading spaces).
    pos: usize,
    start: usize,
    end: usize,
    left: u16,
    right: u16,
    wcost: i16,
    feature: u32,
    source: Source,
    char_type: u8,
    cost: i64,
    prev: usize,
}

/// One word of the best path, as fugashi shows a MeCab node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Morpheme<'a> {
    /// The word's text.
    pub surface: &'a str,
    /// The spaces MeCab skipped right before the word (fugashi's `white_space`).
    pub white_space: &'a str,
    /// The raw feature string (comma-separated, UniDic's fields).
    pub feature: &'a str,
    /// MeCab's `MECAB_UNK_NODE`: made by the unknown-word rules.
    pub is_unk: bool,
    /// The `char.def` category index of the first character.
    pub char_type: u8,
}

/// A loaded dictionary folder; cheap to share between threads.
pub struct Analyzer {
    sys: Dic,
    unk: Dic,
    matrix: Vec<u8>,
    lsize: usize,
    rsize: usize,
    char_map: Vec<u8>,
    categories: Vec<String>,
    /// The unknown-word tokens of each character category.
    unk_tokens: Vec<Vec<Token>>,
    space: CharInfo,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("lsize", &self.lsize)
            .field("rsize", &self.rsize)
            .field("categories", &self.categories)
            .finish()
    }
}

impl Analyzer {
    /// Reads `sys.dic`, `unk.dic`, `matrix.bin` and `char.bin` of `dicdir`.
    pub fn open(dicdir: &Path) -> Result<Self> {
        for f in ["sys.dic", "unk.dic", "matrix.bin", "char.bin"] {
            if !dicdir.join(f).is_file() {
                return Err(Error::ModelNotInstalled(format!(
                    "MeCab dictionary {}: {f} is missing",
                    dicdir.display()
                )));
            }
        }
        let sys = Dic::open(&dicdir.join("sys.dic"))?;
        let unk = Dic::open(&dicdir.join("unk.dic"))?;

        let mpath = dicdir.join("matrix.bin");
        let matrix = std::fs::read(&mpath).map_err(|e| load_err(&mpath, format!("cannot read: {e}")))?;
        let lsize = u16_at(&matrix, 0).unwrap_or(0) as usize;
        let rsize = u16_at(&matrix, 2).unwrap_or(0) as usize;
        if matrix.len() != 4 + 2 * lsize * rsize {
            return Err(load_err(&mpath, "size does not match its lsize × rsize"));
        }
        let sys_l = u32_at(&sys.bytes, 16).unwrap_or(0) as usize;
        let sys_r = u32_at(&sys.bytes, 20).unwrap_or(0) as usize;
        if (sys_l, sys_r) != (lsize, rsize) {
            return Err(load_err(
                &mpath,
                format!("is {lsize}×{rsize}, sys.dic has {sys_l}×{sys_r} ids"),
            ));
        }

        let cpath = dicdir.join("char.bin");
        let char_map = std::fs::read(&cpath).map_err(|e| load_err(&cpath, format!("cannot read: {e}")))?;
        let csize = u32_at(&char_map, 0).unwrap_or(0) as usize;
        if char_map.len() != 4 + 32 * csize + 4 * 0xffff || csize == 0 || csize > 256 {
            return Err(load_err(&cpath, "invalid file size"));
        }
        let categories: Vec<String> = (0..csize)
            .map(|i| {
                let raw = &char_map[4 + 32 * i..4 + 32 * (i + 1)];
                String::from_utf8_lossy(raw.split(|b| *b == 0).next().unwrap_or(&[])).into_owned()
            })
            .collect();
        let mut unk_tokens = Vec::with_capacity(csize);
        for name in &categories {
            let v = unk.exact_match(name.as_bytes()).ok_or_else(|| {
                load_err(
                    &dicdir.join("unk.dic"),
                    format!("no unknown-word entry for category {name}"),
                )
            })?;
            unk_tokens.push(unk.tokens_of(v).collect());
        }
        let mut me = Self {
            sys,
            unk,
            matrix,
            lsize,
            rsize,
            char_map,
            categories,
            unk_tokens,
            space: CharInfo::default(),
        };
        me.space = me.info_of_code(0x20);
        Ok(me)
    }

    fn info_of_code(&self, code: u32) -> CharInfo {
        let code = if code >= 0xffff { 0 } else { code as usize };
        let off = 4 + 32 * self.categories.len() + 4 * code;
        CharInfo::from_bits(u32_at(&self.char_map, off).unwrap_or(0))
    }

    /// `getCharInfo` at byte `at` of `text` (code 0 at the end, as MeCab
    /// reads the terminating NUL); returns the info and the UTF-8 length.
    fn char_info(&self, text: &str, at: usize) -> (CharInfo, usize) {
        match text.get(at..).and_then(|t| t.chars().next()) {
            Some(c) => {
                let code = c as u32;
                let code = if code > 0xffff { 0 } else { code };
                (self.info_of_code(code), c.len_utf8())
            }
            None => (self.info_of_code(0), 1),
        }
    }

    /// `seekToOtherType`: advances from `at` while each character shares a
    /// category with the one before it (starting from `c`). Returns the stop
    /// position, the info and length of the character it stopped on (or of
    /// the last one read) and how many characters it passed.
    fn seek_to_other_type(
        &self,
        text: &str,
        mut at: usize,
        end: usize,
        mut c: CharInfo,
        fail: &mut CharInfo,
        mblen: &mut usize,
    ) -> (usize, usize) {
        let mut clen = 0;
        while at != end {
            let (info, len) = self.char_info(text, at);
            *fail = info;
            *mblen = len;
            if !c.is_kind_of(info) {
                break;
            }
            at += len;
            clen += 1;
            c = info;
        }
        (at, clen)
    }

    fn connection(&self, right_of_left: u16, left_of_right: u16) -> i64 {
        let (l, r) = (right_of_left as usize, left_of_right as usize);
        if l >= self.lsize || r >= self.rsize {
            return 0;
        }
        let off = 4 + 2 * (l + self.lsize * r);
        u16_at(&self.matrix, off).map(|v| v as i16 as i64).unwrap_or(0)
    }

    /// MeCab's `Tokenizer::lookup` at byte `pos`: the nodes starting there,
    /// in MeCab's `bnext` order (the last made first).
    fn lookup(
        &self,
        text: &str,
        pos: usize,
        nodes: &mut Vec<Node>,
        hits: &mut Vec<(i32, usize)>,
    ) -> Vec<usize> {
        let mut made: Vec<usize> = Vec::new();
        let end = text.len().min(pos + MAX_LOOKAHEAD);
        let mut cinfo = CharInfo::default();
        let mut mblen = 0usize;
        let (begin2, _) = self.seek_to_other_type(text, pos, end, self.space, &mut cinfo, &mut mblen);
        if begin2 >= end {
            // Only trailing spaces: MeCab's node would end past the text
            // and never join the path.
            return made;
        }
        let new_node = |nodes: &mut Vec<Node>, t: Token, source: Source, node_end: usize, char_type: u8| {
            nodes.push(Node {
                pos,
                start: begin2,
                end: node_end,
                left: t.left,
                right: t.right,
                wcost: t.cost,
                feature: t.feature,
                source,
                char_type,
                cost: 0,
                prev: 0,
            });
            nodes.len() - 1
        };
        self.sys.common_prefix_search(&text.as_bytes()[begin2..end], hits);
        for &(value, len) in hits.iter() {
            for t in self.sys.tokens_of(value) {
                made.push(new_node(nodes, t, Source::Sys, begin2 + len, cinfo.default_type));
            }
        }
        if !made.is_empty() && !cinfo.invoke {
            made.reverse();
            return made;
        }
        let unk_tokens = self
            .unk_tokens
            .get(cinfo.default_type as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let add_unknown = |nodes: &mut Vec<Node>, made: &mut Vec<usize>, node_end: usize| {
            for &t in unk_tokens {
                made.push(new_node(nodes, t, Source::Unk, node_end, cinfo.default_type));
            }
        };
        let mut begin3 = begin2 + mblen;
        let mut group_begin3 = None;
        if cinfo.group {
            let mut fail = CharInfo::default();
            let mut glen = 0;
            let (stop, clen) = self.seek_to_other_type(text, begin3, end, cinfo, &mut fail, &mut glen);
            if clen <= MAX_GROUPING_SIZE {
                add_unknown(nodes, &mut made, stop);
            }
            group_begin3 = Some(stop);
        }
        for _ in 1..=cinfo.length {
            if begin3 > end {
                break;
            }
            if Some(begin3) == group_begin3 {
                continue;
            }
            add_unknown(nodes, &mut made, begin3);
            let (next, len) = self.char_info(text, begin3);
            if !cinfo.is_kind_of(next) {
                break;
            }
            begin3 += len;
        }
        if made.is_empty() {
            add_unknown(nodes, &mut made, begin3.min(end));
        }
        made.reverse();
        made
    }

    /// The best path through `text` (MeCab's `parseToNode` without BOS/EOS).
    pub fn analyze<'a>(&'a self, text: &'a str) -> Vec<Morpheme<'a>> {
        let len = text.len();
        let bos = Node {
            pos: 0,
            start: 0,
            end: 0,
            left: 0,
            right: 0,
            wcost: 0,
            feature: 0,
            source: Source::BosEos,
            char_type: 0,
            cost: 0,
            prev: 0,
        };
        let mut nodes = vec![bos];
        // end_nodes[p]: nodes ending at p, in MeCab's `enext` order reversed
        // (MeCab prepends, so the list is walked from the back).
        let mut end_nodes: Vec<Vec<usize>> = vec![Vec::new(); len + 1];
        end_nodes[0].push(0);
        let mut hits = Vec::new();
        for pos in 0..len {
            if end_nodes[pos].is_empty() || !text.is_char_boundary(pos) {
                continue;
            }
            let right = self.lookup(text, pos, &mut nodes, &mut hits);
            for r in right {
                let (rleft, rcost) = (nodes[r].left, nodes[r].wcost as i64);
                let mut best: Option<(usize, i64)> = None;
                for &l in end_nodes[pos].iter().rev() {
                    let cost = nodes[l].cost + self.connection(nodes[l].right, rleft) + rcost;
                    if best.is_none_or(|(_, b)| cost < b) {
                        best = Some((l, cost));
                    }
                }
                let Some((prev, cost)) = best else { continue };
                nodes[r].prev = prev;
                nodes[r].cost = cost;
                let x = nodes[r].end;
                if x <= len {
                    end_nodes[x].push(r);
                }
            }
        }
        // EOS joins the last position any node ends at.
        let Some(last) = (0..=len).rev().find(|&p| !end_nodes[p].is_empty()) else {
            return Vec::new();
        };
        let mut best: Option<(usize, i64)> = None;
        for &l in end_nodes[last].iter().rev() {
            let cost = nodes[l].cost + self.connection(nodes[l].right, 0);
            if best.is_none_or(|(_, b)| cost < b) {
                best = Some((l, cost));
            }
        }
        let mut path = Vec::new();
        let mut at = best.map(|b| b.0).unwrap_or(0);
        while at != 0 {
            path.push(at);
            at = nodes[at].prev;
        }
        path.reverse();
        path.into_iter()
            .map(|i| {
                let n = &nodes[i];
                let feature = match n.source {
                    Source::Sys => self.sys.feature(n.feature),
                    Source::Unk => self.unk.feature(n.feature),
                    Source::BosEos => "",
                };
                Morpheme {
                    surface: &text[n.start..n.end],
                    white_space: &text[n.pos..n.start],
                    feature,
                    is_unk: n.source == Source::Unk,
                    char_type: n.char_type,
                }
            })
            .collect()
    }
}
