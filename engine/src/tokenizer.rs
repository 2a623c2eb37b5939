//! Text to token ids exactly as the official wrapper does it (§3.1): the checkpoint's
//! `tokenizer.json`, no BOS, and every multi-character CJK piece split into single characters.
//!
//! The official code loads the file with `LlamaTokenizerFast`. Under transformers 5 (what
//! `pip install voxcpm` brings today) that class keeps the file's vocabulary and merges but
//! replaces its normalizer with a Metaspace pre-tokenizer whose prepend scheme comes from
//! `tokenizer_config.json` (`legacy`, `add_prefix_space`). We rebuild it the same way. The
//! only visible difference from transformers 4, which kept the file's normalizer, is on text
//! that starts with a space.

use std::collections::HashSet;
use std::path::Path;

use crate::error::{Error, Result};

pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    /// Vocabulary entries of ≥ 2 characters, all CJK Unified Ideographs (U+4E00–U+9FFF).
    multichar_cjk: HashSet<String>,
    unk_id: u32,
}

fn is_cjk_ideograph(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

impl TextTokenizer {
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |message: String| Error::Tokenizer { path: path.to_owned(), message };
        if !path.exists() {
            return Err(Error::io(path, std::io::ErrorKind::NotFound.into()));
        }
        let mut inner = parse_tokenizer(path).map_err(bad)?;
        let scheme = prepend_scheme(&path.with_file_name("tokenizer_config.json")).map_err(bad)?;
        inner.with_normalizer(None::<tokenizers::NormalizerWrapper>);
        inner
            .with_pre_tokenizer(Some(tokenizers::pre_tokenizers::metaspace::Metaspace::new('\u{2581}', scheme, false)));
        let vocab = inner.get_vocab(true);
        let multichar_cjk = vocab
            .keys()
            .filter(|piece| piece.chars().count() >= 2 && piece.chars().all(is_cjk_ideograph))
            .cloned()
            .collect();
        let unk_id = inner.token_to_id("<unk>").unwrap_or(0);
        Ok(TextTokenizer { inner, multichar_cjk, unk_id })
    }

    /// Token ids of `text`, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let encoding =
            self.inner.encode(text, false).map_err(|e| Error::InvalidInput(format!("cannot tokenize text: {e}")))?;
        let mut ids = Vec::with_capacity(encoding.len());
        for (piece, &id) in encoding.get_tokens().iter().zip(encoding.get_ids()) {
            let bare = piece.replace('\u{2581}', "");
            if self.multichar_cjk.contains(&bare) {
                for c in bare.chars() {
                    let id = self.inner.token_to_id(c.encode_utf8(&mut [0; 4])).unwrap_or(self.unk_id);
                    ids.push(id as i64);
                }
            } else {
                ids.push(id as i64);
            }
        }
        Ok(ids)
    }
}

/// Reads `tokenizer.json`. The JSON is parsed on its own first: the tokenizers crate panics
/// (`expect("Helper")`) when it meets malformed JSON inside the decoder section, and from an
/// already parsed value that cannot happen. A panic left in the crate is still caught and
/// reported as a damaged file.
fn parse_tokenizer(path: &Path) -> std::result::Result<tokenizers::Tokenizer, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    drop(bytes);
    std::panic::catch_unwind(|| serde_json::from_value::<tokenizers::Tokenizer>(value))
        .map_err(|_| "the tokenizers crate could not read it (a damaged or unsupported tokenizer.json)".to_owned())?
        .map_err(|e| format!("not a tokenizer: {e}"))
}

/// transformers' `_get_prepend_scheme`: "always" for legacy tokenizers, "first" otherwise,
/// "never" when `add_prefix_space` is false. A missing config means the class defaults.
fn prepend_scheme(config: &Path) -> std::result::Result<tokenizers::pre_tokenizers::metaspace::PrependScheme, String> {
    use tokenizers::pre_tokenizers::metaspace::PrependScheme;
    let settings: serde_json::Value = match std::fs::read_to_string(config) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", config.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Value::Null,
        Err(e) => return Err(format!("{}: {e}", config.display())),
    };
    let flag = |key: &str, default: bool| settings.get(key).and_then(|v| v.as_bool()).unwrap_or(default);
    Ok(match (flag("add_prefix_space", true), flag("legacy", false)) {
        (false, _) => PrependScheme::Never,
        (true, true) => PrependScheme::Always,
        (true, false) => PrependScheme::First,
    })
}
