//! Sentence splitting with a hard length limit.
//!
//! Sentences come from UAX #29 sentence boundaries (`unicode-segmentation`),
//! and the Chinese terminators 。！？ always end a sentence. A sentence longer
//! than the limit is cut at clause punctuation (`, ; :` and `，、；：`), a
//! clause still too long at spaces, and a word still too long hard at the limit
//! (between grapheme clusters where one fits, so combining marks stay with
//! their base).
//!
//! Invariants of [`split_sentences`]: every piece is trimmed, non-empty and at
//! most `max_chars` characters (Unicode scalar values) long; pieces are in text
//! order; removing all whitespace from the input and from the concatenated
//! pieces gives the same string (nothing but whitespace is ever dropped).

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

/// Sentences per UAX #29 (unicode-segmentation's sentence bounds), each at most `max_chars` characters:
/// longer sentences are split at clause punctuation (, ; : and the Chinese ，、；：), then at spaces, then
/// hard at the limit. Chinese sentence punctuation (。！？) ends sentences. Empty/whitespace pieces are
/// dropped; pieces are trimmed.
///
/// Two repairs on top of UAX #29, both only where the joined piece fits the
/// limit: a sentence ending in a title abbreviation (`Mr.`, `Dr.`, `Prof.`, ...)
/// is joined with the next one, and a piece with no letter or digit (a lone
/// quote or punctuation mark) is joined to a neighbour. A `max_chars` of 0 is
/// treated as 1 (no piece can be empty).
pub fn split_sentences(text: &str, max_chars: usize) -> Vec<String> {
    let max = max_chars.max(1);
    let mut sentences: Vec<Range<usize>> = Vec::new();
    for (offset, bound) in text.split_sentence_bound_indices() {
        for (start, sentence) in split_after_cjk_terminators(bound) {
            if let Some(r) = trimmed(text, offset + start..offset + start + sentence.len()) {
                sentences.push(r);
            }
        }
    }
    let sentences = join_after_abbreviations(text, sentences, max);
    let mut pieces = Vec::new();
    for r in sentences {
        fit_sentence(text, r, max, &mut pieces);
    }
    join_unspoken(text, pieces, max)
        .into_iter()
        .map(|r| text[r].to_owned())
        .collect()
}

/// `r` without surrounding whitespace; `None` when nothing is left.
fn trimmed(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    let start = r.start + (s.len() - s.trim_start().len());
    let end = r.end - (s.len() - s.trim_end().len());
    (start < end).then_some(start..end)
}

/// Title abbreviations after which UAX #29 would wrongly end a sentence ("Mr. Smith").
const TITLE_ABBREVIATIONS: &[&str] = &[
    "Mr", "Mrs", "Ms", "Mx", "Dr", "Prof", "Sr", "Jr", "St", "Mt", "Rev", "Gen", "Col", "Capt", "Lt", "Sgt",
    "Gov", "Sen", "Rep", "Hon", "Fr", "vs", "Fig", "Ft",
];

fn ends_with_title_abbreviation(s: &str) -> bool {
    let Some(stem) = s.strip_suffix('.') else {
        return false;
    };
    let word = stem.rsplit(|c: char| !c.is_alphabetic()).next().unwrap_or("");
    TITLE_ABBREVIATIONS.contains(&word)
}

fn join_after_abbreviations(text: &str, sentences: Vec<Range<usize>>, max: usize) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::with_capacity(sentences.len());
    for r in sentences {
        if let Some(prev) = out.last_mut() {
            if ends_with_title_abbreviation(&text[prev.clone()]) && char_len(&text[prev.start..r.end]) <= max
            {
                prev.end = r.end;
                continue;
            }
        }
        out.push(r);
    }
    out
}

/// Joins pieces without any letter or digit to a neighbour where that fits:
/// opening quotes and brackets to the next piece, anything else to the previous
/// one (or the next, when the previous has no room).
fn join_unspoken(text: &str, pieces: Vec<Range<usize>>, max: usize) -> Vec<Range<usize>> {
    let spoken = |r: &Range<usize>| text[r.clone()].chars().any(char::is_alphanumeric);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(pieces.len());
    let mut carry: Option<Range<usize>> = None;
    for r in pieces {
        let r = match carry.take() {
            Some(c) if char_len(&text[c.start..r.end]) <= max => c.start..r.end,
            Some(c) => {
                out.push(c);
                r
            }
            None => r,
        };
        if !spoken(&r) {
            let opening = text[r.clone()].chars().all(|c| c.is_whitespace() || is_opener(c));
            match out.last_mut() {
                Some(prev) if !opening && char_len(&text[prev.start..r.end]) <= max => prev.end = r.end,
                _ => carry = Some(r),
            }
            continue;
        }
        out.push(r);
    }
    out.extend(carry);
    out
}

/// Characters that end a sentence in Chinese text regardless of what follows.
fn is_cjk_terminator(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '｡')
}

/// Closing quotes and brackets that belong to the sentence or clause before them.
pub(crate) fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | ']' | '}' | '”' | '’' | '」' | '』' | '）' | '》' | '】' | '〉' | '»' | '›'
    )
}

/// Opening quotes and brackets, which belong to the text after them.
fn is_opener(c: char) -> bool {
    matches!(
        c,
        '(' | '[' | '{' | '“' | '‘' | '「' | '『' | '（' | '《' | '【' | '〈' | '«' | '‹'
    )
}

/// Splits after every run of 。！？ (with the closing quotes/brackets that follow it): (offset, piece).
fn split_after_cjk_terminators(s: &str) -> Vec<(usize, &str)> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((_, c)) = iter.next() {
        if !is_cjk_terminator(c) {
            continue;
        }
        while let Some(&(_, next)) = iter.peek() {
            if is_cjk_terminator(next) || matches!(next, '!' | '?') || is_closer(next) {
                iter.next();
            } else {
                break;
            }
        }
        let end = iter.peek().map_or(s.len(), |&(i, _)| i);
        pieces.push((start, &s[start..end]));
        start = end;
    }
    if start < s.len() {
        pieces.push((start, &s[start..]));
    }
    pieces
}

/// Clause punctuation for the long-sentence fallback.
fn is_clause_punct(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '，' | '、' | '；' | '：')
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Pushes the sentence `text[r]` (trimmed, non-empty) as one or more pieces of at most `max` characters.
fn fit_sentence(text: &str, r: Range<usize>, max: usize, out: &mut Vec<Range<usize>>) {
    if char_len(&text[r.clone()]) <= max {
        out.push(r);
        return;
    }
    let clauses = offset(clause_ranges(&text[r.clone()]), r.start);
    pack(text, &clauses, max, out, &|clause, out| {
        let words = offset(word_ranges(&text[clause.clone()]), clause.start);
        pack(text, &words, max, out, &|word, out| {
            hard_split(text, word, max, out)
        });
    });
}

fn offset(ranges: Vec<Range<usize>>, by: usize) -> Vec<Range<usize>> {
    ranges.into_iter().map(|r| r.start + by..r.end + by).collect()
}

/// Ranges covering `s` that each end after a run of clause punctuation (ASCII
/// punctuation only counts when whitespace or the end follows, so `1,000` stays whole).
fn clause_ranges(s: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((_, c)) = iter.next() {
        if !is_clause_punct(c) {
            continue;
        }
        while let Some(&(_, next)) = iter.peek() {
            if is_clause_punct(next) || is_closer(next) {
                iter.next();
            } else {
                break;
            }
        }
        let end = iter.peek().map_or(s.len(), |&(i, _)| i);
        let next_is_space = iter.peek().is_none_or(|&(_, n)| n.is_whitespace());
        if c.is_ascii() && !next_is_space {
            continue;
        }
        ranges.push(start..end);
        start = end;
    }
    if start < s.len() {
        ranges.push(start..s.len());
    }
    ranges
}

/// Ranges covering `s`, one per word with the whitespace that follows it.
fn word_ranges(s: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut prev_space = false;
    let mut seen_word = false;
    for (i, c) in s.char_indices() {
        let space = c.is_whitespace();
        if prev_space && !space && seen_word {
            ranges.push(start..i);
            start = i;
        }
        seen_word |= !space;
        prev_space = space;
    }
    if start < s.len() {
        ranges.push(start..s.len());
    }
    ranges
}

/// What [`pack`] does with a range too long on its own.
type Finer<'a> = dyn Fn(Range<usize>, &mut Vec<Range<usize>>) + 'a;

/// Greedily joins adjacent `ranges` of `text` into trimmed pieces of at most
/// `max` characters; a single range that is too long on its own goes to `finer`.
fn pack(text: &str, ranges: &[Range<usize>], max: usize, out: &mut Vec<Range<usize>>, finer: &Finer<'_>) {
    let mut current: Option<Range<usize>> = None;
    for r in ranges {
        let Some(alone) = trimmed(text, r.clone()) else {
            continue;
        };
        if char_len(&text[alone.clone()]) > max {
            out.extend(current.take());
            finer(alone, out);
            continue;
        }
        current = match current.take() {
            Some(cur) if char_len(&text[cur.start..alone.end]) <= max => Some(cur.start..alone.end),
            Some(cur) => {
                out.push(cur);
                Some(alone)
            }
            None => Some(alone),
        };
    }
    out.extend(current);
}

/// Cuts the word `text[r]` into chunks of at most `max` characters, between
/// grapheme clusters when a cluster fits, else between characters. A chunk
/// that would hold only punctuation takes the last cluster of the chunk before
/// it, so a cut never leaves a lone `、` when there is room to avoid it.
fn hard_split(text: &str, r: Range<usize>, max: usize, out: &mut Vec<Range<usize>>) {
    let mut units: Vec<Range<usize>> = Vec::new();
    for (i, g) in text[r.clone()].grapheme_indices(true) {
        let start = r.start + i;
        if char_len(g) <= max {
            units.push(start..start + g.len());
        } else {
            units.extend(g.char_indices().map(|(j, c)| start + j..start + j + c.len_utf8()));
        }
    }
    let mut chunks: Vec<Range<usize>> = Vec::new();
    let mut chunk_units: Vec<usize> = Vec::new();
    for u in units {
        match chunks.last_mut() {
            Some(last) if char_len(&text[last.start..u.end]) <= max => {
                last.end = u.end;
                if let Some(n) = chunk_units.last_mut() {
                    *n += 1;
                }
            }
            _ => {
                chunks.push(u);
                chunk_units.push(1);
            }
        }
    }
    for k in 1..chunks.len() {
        let spoken = text[chunks[k].clone()].chars().any(char::is_alphanumeric);
        if spoken || chunk_units[k - 1] < 2 {
            continue;
        }
        let prev = &text[chunks[k - 1].clone()];
        let Some((cut, last)) = prev.grapheme_indices(true).next_back() else {
            continue;
        };
        let moved = char_len(last) + char_len(&text[chunks[k].clone()]);
        if moved <= max && last.chars().any(char::is_alphanumeric) {
            let at = chunks[k - 1].start + cut;
            chunks[k - 1].end = at;
            chunks[k].start = at;
            chunk_units[k - 1] -= 1;
        }
    }
    out.extend(chunks);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_ws(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn short_text_is_split_into_sentences() {
        assert_eq!(
            split_sentences("Hello there. How are you? Fine!", 100),
            ["Hello there.", "How are you?", "Fine!"]
        );
    }

    #[test]
    fn clause_ranges_keep_thousands_together() {
        let s = "1,000 apples, 2,000 pears";
        let pieces: Vec<_> = clause_ranges(s).into_iter().map(|r| &s[r]).collect();
        assert_eq!(pieces, ["1,000 apples,", " 2,000 pears"]);
    }

    #[test]
    fn word_ranges_cover_the_input() {
        let s = "  a bb   ccc ";
        let ranges = word_ranges(s);
        let joined: String = ranges.iter().map(|r| &s[r.clone()]).collect();
        assert_eq!(joined, s);
        assert_eq!(ranges.len(), 3);
    }

    fn hard(word: &str, max: usize) -> Vec<&str> {
        let mut out = Vec::new();
        hard_split(word, 0..word.len(), max, &mut out);
        out.into_iter().map(|r| &word[r]).collect()
    }

    #[test]
    fn hard_split_keeps_combining_marks_with_their_base() {
        assert_eq!(
            hard("e\u{301}e\u{301}e\u{301}", 2),
            ["e\u{301}", "e\u{301}", "e\u{301}"]
        );
    }

    #[test]
    fn hard_split_splits_oversized_clusters_by_char() {
        let out = hard("e\u{301}\u{302}\u{303}", 2);
        assert!(out.iter().all(|p| p.chars().count() <= 2));
        assert_eq!(out.concat(), "e\u{301}\u{302}\u{303}");
    }

    #[test]
    fn hard_split_avoids_a_lone_punctuation_chunk() {
        assert_eq!(hard("一二三四、", 4), ["一二三", "四、"]);
        assert_eq!(hard("abcd!!", 4), ["abc", "d!!"]);
        // No room to move a letter: the punctuation chunk stays (it is never dropped).
        assert_eq!(hard("ab!!", 2), ["ab", "!!"]);
    }

    #[test]
    fn title_abbreviations_do_not_end_sentences() {
        assert!(ends_with_title_abbreviation("I met Mr."));
        assert!(ends_with_title_abbreviation("Dr."));
        assert!(!ends_with_title_abbreviation("I met Mrs"));
        assert!(!ends_with_title_abbreviation("Amr."));
    }

    #[test]
    fn zero_limit_behaves_as_one() {
        let pieces = split_sentences("ab c", 0);
        assert_eq!(pieces, ["a", "b", "c"]);
        assert_eq!(strip_ws(&pieces.concat()), "abc");
    }
}
