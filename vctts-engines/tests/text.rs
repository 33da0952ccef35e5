//! The text front end from the outside: sentence splitting, normalisation and
//! espeak-ng phonemes (the phoneme tests need espeak-ng, which
//! `scripts/setup.sh` installs; they fail, not skip, without it).

use proptest::prelude::*;
use vctts_engines::text::phonemize::Espeak;
use vctts_engines::text::{normalize, split_sentences};

// ------------------------------------------------------------------ split

#[track_caller]
fn check_split(text: &str, max: usize, expected: &[&str]) {
    let pieces = split_sentences(text, max);
    assert_eq!(pieces, expected, "split_sentences({text:?}, {max})");
    assert_invariants(text, max, &pieces);
}

#[track_caller]
fn assert_invariants(text: &str, max: usize, pieces: &[String]) {
    let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    for p in pieces {
        assert!(!p.is_empty(), "empty piece from {text:?}");
        assert_eq!(p.trim(), p, "untrimmed piece {p:?}");
        assert!(p.chars().count() <= max.max(1), "piece {p:?} is over {max} chars");
    }
    assert_eq!(
        strip(&pieces.concat()),
        strip(text),
        "non-whitespace text lost or reordered"
    );
}

#[test]
fn splits_at_sentence_punctuation() {
    check_split(
        "Hello there. How are you? Fine!",
        100,
        &["Hello there.", "How are you?", "Fine!"],
    );
    check_split(
        "Really?! Yes... \"Quoted.\" Next one.",
        100,
        &["Really?!", "Yes...", "\"Quoted.\"", "Next one."],
    );
    check_split("  \n\t ", 10, &[]);
    check_split("", 10, &[]);
    check_split(
        "First line\n\nSecond paragraph",
        100,
        &["First line", "Second paragraph"],
    );
}

#[test]
fn abbreviations_follow_uax29_with_title_repairs() {
    // UAX #29 keeps a period followed by a lowercase word or a digit inside the sentence.
    check_split(
        "Bring e.g. coffee at 10 a.m. today. Then go.",
        100,
        &["Bring e.g. coffee at 10 a.m. today.", "Then go."],
    );
    check_split("Pi is 3.14 exactly. Yes.", 100, &["Pi is 3.14 exactly.", "Yes."]);
    // UAX #29 would end a sentence after "Mr."; titles are joined back.
    check_split(
        "Mr. Smith met Dr. Jones. They talked.",
        100,
        &["Mr. Smith met Dr. Jones.", "They talked."],
    );
    // ...but only when the joined sentence fits the limit.
    check_split("Mr. Smith went home.", 10, &["Mr.", "Smith went", "home."]);
    // A capitalised word after an unknown abbreviation starts a new sentence (as UAX #29 says).
    check_split(
        "Made in the U.S. Army tests.",
        100,
        &["Made in the U.S.", "Army tests."],
    );
}

#[test]
fn chinese_terminators_end_sentences() {
    check_split(
        "你好。今天天气很好！你呢？我很好，谢谢。",
        100,
        &["你好。", "今天天气很好！", "你呢？", "我很好，谢谢。"],
    );
    // Closing quotes stay with their sentence, opening quotes go with the next.
    check_split(
        "他说：“好的。”然后走了。“再见！”",
        100,
        &["他说：“好的。”", "然后走了。", "“再见！”"],
    );
    check_split("Mixed 中文。And English.", 100, &["Mixed 中文。", "And English."]);
}

#[test]
fn long_sentences_split_at_clauses_then_spaces() {
    check_split(
        "This is a long clause, with a comma; and a semicolon: and then more words",
        30,
        &[
            "This is a long clause,",
            "with a comma; and a semicolon:",
            "and then more words",
        ],
    );
    // Thousands separators are not clause punctuation.
    check_split(
        "We counted 1,000,000 stars, 2,000 moons",
        27,
        &["We counted 1,000,000 stars,", "2,000 moons"],
    );
    check_split(
        "one two three four five six seven eight nine ten",
        20,
        &["one two three four", "five six seven eight", "nine ten"],
    );
    check_split(
        "这是一个很长的句子，需要在逗号处切分、再在顿号处切分。",
        12,
        &["这是一个很长的句子，", "需要在逗号处切分、", "再在顿号处切分。"],
    );
}

#[test]
fn unpunctuated_text_is_cut_hard_at_the_limit() {
    check_split(
        "Supercalifragilisticexpialidocious",
        10,
        &["Supercalif", "ragilistic", "expialidoc", "ious"],
    );
    check_split(
        "没有任何标点符号的一段很长的中文文本需要硬切分",
        8,
        &["没有任何标点符号", "的一段很长的中文", "文本需要硬切分"],
    );
    // A cut never leaves a lone punctuation mark when a character can move over.
    check_split("一二三四、五", 4, &["一二三", "四、", "五"]);
}

#[test]
fn limit_is_counted_in_characters_not_bytes() {
    let text = "é".repeat(25);
    let pieces = split_sentences(&text, 10);
    assert_eq!(
        pieces.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
        [10, 10, 5]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn split_invariants_hold_for_any_text(
        text in "[a-zA-Z0-9 ,.;:!?\"'()\\-\n\u{4e00}-\u{4e10}。！？，、“”é\u{301}]{0,300}",
        max in 1usize..60,
    ) {
        let pieces = split_sentences(&text, max);
        assert_invariants(&text, max, &pieces);
    }
}

// -------------------------------------------------------------- normalize

#[track_caller]
fn check_normalize(lang: &str, cases: &[(&str, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|&(input, expected)| {
            let got = normalize(input, lang);
            (got != expected).then(|| format!("  {input:?}\n    expected {expected:?}\n    got      {got:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "normalize(_, {lang:?}) mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn english_numbers() {
    check_normalize(
        "en",
        &[
            ("I have 42 apples.", "I have forty-two apples."),
            ("0 and 7 and 13", "zero and seven and thirteen"),
            (
                "Population 1,234,567 people.",
                "Population one million two hundred thirty-four thousand five hundred sixty-seven people.",
            ),
            ("Pi is 3.14159.", "Pi is three point one four one five nine."),
            ("about .5 of it", "about point five of it"),
            ("It is -3 outside", "It is minus three outside"),
            ("Agent 007", "Agent zero zero seven"),
            ("Version 1.2.3", "Version one dot two dot three"),
            ("A4 paper and mp3 files", "A four paper and mp three files"),
            ("x-5 stays joined", "x-five stays joined"),
            (
                "1234567890123456789012 items",
                "one two three, four five six, seven eight nine, zero one two, three four five, six seven eight, nine zero one, \
                 two items",
            ),
        ],
    );
}

#[test]
fn english_ordinals_years_dates_times() {
    check_normalize(
        "en",
        &[
            (
                "He came 1st, she 2nd, they 3rd and 4th.",
                "He came first, she second, they third and fourth.",
            ),
            (
                "the 11th, 12th, 21st and 103rd",
                "the eleventh, twelfth, twenty-first and one hundred third",
            ),
            ("Born in 1999.", "Born in nineteen ninety-nine."),
            (
                "In 2024 we had 2024 ideas.",
                "In twenty twenty-four we had two thousand twenty-four ideas.",
            ),
            (
                "since 2000, by 2005, until 2010",
                "since two thousand, by two thousand five, until twenty ten",
            ),
            ("the year 1905", "the year nineteen oh five"),
            ("in 1900 exactly", "in nineteen hundred exactly"),
            ("founded 1066 AD", "founded ten sixty-six AD"),
            (
                "From 1999-2005.",
                "From nineteen ninety-nine to two thousand five.",
            ),
            (
                "The 1990s and the 80s.",
                "The nineteen nineties and the eighties.",
            ),
            (
                "On March 5, 1999 it rained.",
                "On March fifth, nineteen ninety-nine it rained.",
            ),
            (
                "On 5 March 2024 it rained.",
                "On the fifth of March twenty twenty-four it rained.",
            ),
            ("May 2020 and may 5", "May twenty twenty and may five"),
            ("Meet on 2024-03-05.", "Meet on March fifth, twenty twenty-four."),
            (
                "bad date 2024-13-05",
                "bad date two thousand twenty-four-thirteen-zero five",
            ),
            ("at 10:30", "at ten thirty"),
            ("at 10:05 or 10:00", "at ten oh five or ten o'clock"),
            (
                "at 9:30 pm or 7am or 11 a.m.",
                "at nine thirty p.m. or seven a.m. or eleven a.m.",
            ),
            ("lap 11:15:30", "lap eleven fifteen and thirty seconds"),
            ("ratio 3:2", "ratio three:two"),
        ],
    );
}

#[test]
fn english_currency_percent_symbols() {
    check_normalize(
        "en",
        &[
            ("It costs $3.50.", "It costs three dollars fifty cents."),
            ("It costs $1.", "It costs one dollar."),
            (
                "$0.99 or $1.01 or $5.5",
                "ninety-nine cents or one dollar one cent or five dollars fifty cents",
            ),
            ("$1,000,000", "one million dollars"),
            ("$2.5 million", "two point five million dollars"),
            ("€5 and 5€ and € 20", "five euros and five euros and twenty euros"),
            ("£2.50 and £0.01", "two pounds fifty pence and one penny"),
            ("¥100", "one hundred yen"),
            (
                "Up 50% and 3.5 % down",
                "Up fifty percent and three point five percent down",
            ),
            ("1% only", "one percent only"),
            (
                "It was 25°C, -5 °C and 1°C",
                "It was twenty-five degrees Celsius, minus five degrees Celsius and one degree Celsius",
            ),
            (
                "98.6°F and a 90° turn and 30℃",
                "ninety-eight point six degrees Fahrenheit and a ninety degrees turn and thirty degrees Celsius",
            ),
            ("Tom & Jerry @ home", "Tom and Jerry at home"),
            ("1+1=2", "one plus one equals two"),
            ("C++ and AT&T", "C plus plus and AT and T"),
            ("Call #5 now, #hashtag", "Call number five now, #hashtag"),
            ("3×4÷2", "three times four divided by two"),
        ],
    );
}

#[test]
fn chinese_numbers() {
    check_normalize(
        "zh",
        &[
            ("我有123个苹果。", "我有一百二十三个苹果。"),
            ("10个和15个和110个", "十个和十五个和一百一十个"),
            ("一共10000人，共100010000元。", "一共一万人，共一亿零一万元。"),
            ("1005和1050", "一千零五和一千零五十"),
            ("小数3.14和1,000,000", "小数三点一四和一百万"),
            ("负数-3和0.5和.5", "负数负三和零点五和零点五"),
            ("电话13800138000", "电话一三八零零一三八零零零"),
            ("我有2个孩子和2只猫，第2名。", "我有两个孩子和两只猫，第二名。"),
            ("０１２３", "零一二三"),
            ("iPhone 15", "iPhone 十五"),
        ],
    );
}

#[test]
fn chinese_dates_times_money_percent() {
    check_normalize(
        "zh-CN",
        &[
            ("今年是2024年。", "今年是二零二四年。"),
            ("1999年3月5日出生。", "一九九九年三月五日出生。"),
            ("会议在2024-03-05举行。", "会议在二零二四年三月五日举行。"),
            (
                "现在是10:30，还是10:05或10:00。",
                "现在是十点三十分，还是十点零五分或十点。",
            ),
            (
                "增长了50%，下降了3.5%。",
                "增长了百分之五十，下降了百分之三点五。",
            ),
            (
                "价格是¥3.50，或￥100，或¥3.05，或¥0.5",
                "价格是三元五角，或一百元，或三元零五分，或五角",
            ),
            ("花了$5和€20.5和£3", "花了五美元和二十点五欧元和三英镑"),
            ("100元和3.5元", "一百元和三点五元"),
            ("气温-5°C，最高25℃。", "气温零下五摄氏度，最高二十五摄氏度。"),
            ("A&B，1+1=2", "A和B，一加一等于二"),
            ("５０％", "百分之五十"),
        ],
    );
}

#[test]
fn other_languages_only_collapse_whitespace() {
    check_normalize(
        "de",
        &[("Ich habe   42 Äpfel.\n 50%  ", "Ich habe 42 Äpfel. 50%")],
    );
    check_normalize("", &[("  a \t b  ", "a b")]);
    check_normalize("en", &[("   lots   of\n\nspace   ", "lots of space")]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn normalize_is_total_and_clean(text in "\\PC{0,120}", lang in prop::sample::select(vec!["en", "zh", "fr"])) {
        let out = normalize(&text, lang);
        prop_assert_eq!(out.trim(), out.as_str());
        prop_assert!(!out.contains("  "));
    }
}

// -------------------------------------------------------------- phonemize

fn espeak() -> Espeak {
    Espeak::locate().unwrap_or_else(|e| panic!("these tests need espeak-ng (run scripts/setup.sh): {e}"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn phonemes_keep_punctuation_in_place() {
    let got = espeak()
        .phonemize("en-us", &strings(&["Hello, world!"]))
        .expect("phonemize");
    assert_eq!(got, ["həlˈoʊ, wˈɜːld!"]);
    let got = espeak()
        .phonemize(
            "en-us",
            &strings(&["Wait... what?! Yes; no: maybe.", "no punctuation"]),
        )
        .expect("phonemize");
    // As piper-tts writes it: an ellipsis ends a clause with no mark and no
    // space, `?!` is espeak-ng's `?`.
    assert_eq!(got, ["wˈeɪtwˈʌt? jˈɛs; nˈoʊ: mˈeɪbiː.", "nˈoʊ pˌʌŋktʃuːˈeɪʃən"]);
    let utterances = espeak()
        .phonemize_utterances("en-us", &strings(&["Wait... what?! Yes; no: maybe."]))
        .expect("phonemize");
    assert_eq!(utterances, [["wˈeɪtwˈʌt?", "jˈɛs; nˈoʊ: mˈeɪbiː."]]);
}

#[test]
fn empty_and_unpronounceable_sentences_give_empty_phonemes() {
    let got = espeak()
        .phonemize("en-us", &strings(&["", "   ", "...", "ok", "—"]))
        .expect("phonemize");
    assert_eq!(got, ["", "", "", "ˌoʊkˈeɪ", ""]);
    assert!(espeak().phonemize("en-us", &[]).expect("empty batch").is_empty());
}

#[test]
fn a_large_batch_maps_back_in_order() {
    // Each sentence names its own index, so a misaligned mapping cannot pass.
    let numbers = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    let sentences: Vec<String> = (0..200)
        .map(|i| format!("Item {}, then {}.", numbers[i % 10], numbers[(i / 10) % 10]))
        .collect();
    let batch = espeak().phonemize("en-us", &sentences).expect("batch");
    assert_eq!(batch.len(), sentences.len());
    // Reference: the same sentences one at a time.
    for (i, s) in sentences.iter().enumerate().take(100) {
        let single = espeak()
            .phonemize("en-us", std::slice::from_ref(s))
            .expect("single");
        assert_eq!(batch[i], single[0], "sentence {i}: {s:?}");
        assert_eq!(batch[i], batch[i + 100], "same text, same phonemes");
    }
}

#[test]
fn clauses_espeak_splits_itself_still_map_back() {
    // espeak-ng cuts "Mr. Smith" into two clauses of its own; the batch must stay aligned.
    let sentences = strings(&[
        "Mr. Smith went to Washington",
        "Hello there",
        "Line one\nline two",
    ]);
    let got = espeak().phonemize("en-us", &sentences).expect("phonemize");
    assert_eq!(got.len(), 3);
    assert!(
        got[0].starts_with("mˈɪstɚ") && got[0].ends_with("wˈɑːʃɪŋtən"),
        "{:?}",
        got[0]
    );
    assert_eq!(got[1], "həlˈoʊ ðˈɛɹ");
    assert!(got[2].contains("wˈʌn") && got[2].contains("tˈuː"), "{:?}", got[2]);
}

#[test]
fn raw_phoneme_brackets_are_not_passed_through() {
    let got = espeak()
        .phonemize("en-us", &strings(&["say [[h@l'oU]] now"]))
        .expect("phonemize");
    assert!(!got[0].contains('@') && !got[0].contains('\''), "{:?}", got[0]);
}

#[test]
fn voices_are_validated() {
    let espeak = espeak();
    assert!(espeak.has_voice("en-us").expect("voices"));
    assert!(espeak.has_voice("EN-US").expect("voices"));
    assert!(espeak.has_voice("en").expect("voices"));
    assert!(!espeak.has_voice("xx-nope").expect("voices"));
    let err = espeak
        .phonemize("xx-nope", &strings(&["hello"]))
        .expect_err("unknown voice");
    assert_eq!(err.code(), "unsupported_language");
    assert!(err.to_string().contains("xx-nope"), "{err}");
    let err = espeak
        .phonemize("-q", &strings(&["hello"]))
        .expect_err("option-like voice");
    assert_eq!(err.code(), "invalid_input");
}

#[test]
fn missing_binary_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("espeak-ng");
    let err = Espeak::with_binary(missing.clone())
        .phonemize("en-us", &strings(&["hello"]))
        .expect_err("missing");
    assert_eq!(err.code(), "model_not_installed");
    let msg = err.to_string();
    assert!(
        msg.contains(&missing.display().to_string()) && msg.contains("scripts/setup.sh"),
        "{msg}"
    );

    let empty = dir.path().as_os_str().to_owned();
    let err = Espeak::locate_with(|k| (k == "PATH").then(|| empty.clone())).expect_err("not on PATH");
    assert_eq!(err.code(), "model_not_installed");
    assert!(err.to_string().contains("espeak-ng not found"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_failing_process_reports_its_stderr() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("espeak-ng");
    // A stand-in that knows the voice but fails to speak.
    std::fs::write(
        &fake,
        "#!/bin/sh\nif [ \"$1\" = --voices ]; then\n  echo 'Pty Language Age/Gender VoiceName File Other'\n  \
         echo ' 2  en-us --/M English_(America) gmw/en-US (en 3)'\n  exit 0\nfi\ncat >/dev/null\n\
         echo 'phoneme data corrupt' >&2\nexit 3\n",
    )
    .expect("write");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let err = Espeak::with_binary(fake)
        .phonemize("en-us", &strings(&["hello"]))
        .expect_err("fails");
    assert_eq!(err.code(), "inference_failed");
    assert!(err.to_string().contains("phoneme data corrupt"), "{err}");
}
