//! Text normalisation as the official `normalize=True` does it (§6.8): numbers, dates, times,
//! money, units and abbreviations become words, so the model reads "$5" as "five dollars".
//!
//! The steps are the official ones, written natively: clean-up (markdown, emoji, newlines,
//! curly quotes; `clean.rs`), the language picked the official way (Chinese when any
//! character is in U+4E00–U+9FFF, English otherwise; the whole line goes one way), then the
//! English (`en.rs`) or Chinese (`zh.rs`) rules. The rules are our own, checked against the
//! official normaliser's answers on the table in `tests/fixtures/normalize_cases.json`.
//!
//! Every step is one linear pass, so any length is fine (a 100 kB line takes milliseconds);
//! there is no length limit, as the runtime has none for text.

mod clean;
mod en;
pub mod numbers;
mod zh;

/// The language a line is normalised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    Chinese,
}

impl Language {
    /// "en" or "zh", as the official code names them.
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Chinese => "zh",
        }
    }
}

/// The official choice: Chinese when any character is a CJK unified ideograph
/// (U+4E00–U+9FFF), English otherwise.
pub fn detect_language(text: &str) -> Language {
    if text.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c)) { Language::Chinese } else { Language::English }
}

/// Normalises `text` in the language [`detect_language`] picks. The result may be empty (a
/// line of emoji or markup only); callers that speak it must refuse that.
pub fn normalize(text: &str) -> String {
    normalize_as(text, detect_language(text))
}

/// Normalises `text` as `language`.
pub fn normalize_as(text: &str, language: Language) -> String {
    let cleaned = clean::clean(text);
    match language {
        Language::English => en::normalize(&cleaned),
        Language::Chinese => zh::normalize(&cleaned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_chinese_character_makes_the_line_chinese() {
        assert_eq!(detect_language("Call me at 5"), Language::English);
        assert_eq!(detect_language("Call 我 at 5"), Language::Chinese);
        assert_eq!(detect_language("こんにちは"), Language::English, "kana alone is not U+4E00–U+9FFF");
    }

    #[test]
    fn emoji_only_is_empty() {
        assert_eq!(normalize("😀 😀"), "");
    }
}
