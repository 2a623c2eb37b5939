//! The unified input sequence (§3.2): per position a token id, a latent patch, and whether the
//! position is text or audio.

/// Ids the model reserves for audio segment boundaries (hard-coded in the reference).
pub const AUDIO_START: i64 = 101;

/// One prefill sequence for the generation loop.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// Token id per position; audio positions carry 0.
    pub tokens: Vec<i64>,
    /// `[positions, patch_size, feat_dim]` row-major; zeros at text positions.
    pub features: Vec<f32>,
    /// True at audio positions (their embedding comes from LocEnc).
    pub audio_mask: Vec<bool>,
}

impl Sequence {
    /// Zero-shot layout: the text's tokens (the trailing `AUDIO_START` already included) and
    /// no audio.
    pub fn zero_shot(tokens: Vec<i64>, patch_len: usize) -> Self {
        let n = tokens.len();
        Sequence { tokens, features: vec![0.0; n * patch_len], audio_mask: vec![false; n] }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// The official cap on generated patches: `min(int(6·target_tokens + 10), max_len)` (§6.3).
pub fn patch_cap(target_tokens: usize, max_len: usize) -> usize {
    ((target_tokens as f64 * 6.0 + 10.0) as usize).min(max_len)
}
