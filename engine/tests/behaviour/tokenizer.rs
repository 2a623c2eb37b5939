//! Token ids identical to the official wrapper (LlamaTokenizerFast + multi-char CJK split).

use crate::common::fixtures;
use voxcpm_engine::tokenizer::TextTokenizer;

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<i64>,
}

#[test]
fn ids_match_the_official_wrapper() {
    let tokenizer = TextTokenizer::load(&fixtures().join("tiny/checkpoint/tokenizer.json")).unwrap();
    let cases: Vec<Case> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("tokenizer_cases.json")).unwrap()).unwrap();
    assert!(cases.len() >= 25);
    let mut split_seen = false;
    for case in &cases {
        let ids = tokenizer.encode(&case.text).unwrap();
        assert_eq!(ids, case.ids, "text {:?}", case.text);
        split_seen |= case.text.contains("你好");
    }
    assert!(split_seen, "the cases exercise the multi-character CJK split");
}
