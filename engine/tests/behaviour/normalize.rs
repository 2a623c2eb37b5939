//! The native normaliser against the official one: every case of
//! `fixtures/normalize_cases.json` (made by `tools/normalize/make_cases.py`), all mismatches
//! reported at once.

use serde::Deserialize;
use voxcpm_engine::text::{Language, detect_language, normalize};

#[derive(Deserialize)]
struct Case {
    category: String,
    input: String,
    lang: String,
    expected: String,
    /// Set where the official answer is broken and `expected` is ours.
    note: Option<String>,
}

fn cases() -> Vec<Case> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/normalize_cases.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn every_case_matches_the_official_normaliser() {
    let cases = cases();
    assert!(cases.len() >= 150, "{} cases", cases.len());
    let noted = cases.iter().filter(|c| c.note.is_some()).count();
    assert!(noted * 10 < cases.len(), "most cases must be the official answer verbatim ({noted} noted)");
    let mut failures = Vec::new();
    for case in &cases {
        let lang = detect_language(&case.input);
        let code = if lang == Language::Chinese { "zh" } else { "en" };
        let got = normalize(&case.input);
        if code != case.lang || got != case.expected {
            failures.push(format!(
                "[{}] {:?} ({} vs {}):\n    expected {:?}\n    got      {:?}",
                case.category, case.input, case.lang, code, case.expected, got
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn a_100_kb_line_is_normalised_in_linear_time() {
    let line =
        "On May 5 at 3:30 pm I paid $5.50 for 2.5 kg, call 555-123-4567. 今天是2024年5月1日，价格¥12.5。 ".repeat(1000);
    assert!(line.len() > 100_000);
    let started = std::time::Instant::now();
    let out = normalize(&line);
    let elapsed = started.elapsed();
    assert!(out.contains("十二点五元") && !out.chars().any(|c| c.is_ascii_digit()), "{}", &out[..200]);
    assert!(elapsed.as_secs_f64() < 2.0, "took {elapsed:?}");
}
