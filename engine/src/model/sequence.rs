//! The unified input sequence (§3.2): per position a token id, a latent patch, and whether the
//! position is text or audio. Built here for every prompting mode of the official `_generate`.

/// Start of the generated audio; closes the text (hard-coded ids in the reference).
pub const AUDIO_START: i64 = 101;
/// Brackets around an isolated reference-voice clip (VoxCPM2 only).
pub const REF_AUDIO_START: i64 = 103;
pub const REF_AUDIO_END: i64 = 104;

/// One prefill sequence for the generation loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    /// Token id per position; audio positions carry 0.
    pub tokens: Vec<i64>,
    /// `[positions, patch_size, feat_dim]` row-major; zeros at text positions.
    pub features: Vec<f32>,
    /// True at audio positions (their embedding comes from LocEnc).
    pub audio_mask: Vec<bool>,
    patch_len: usize,
}

impl Sequence {
    fn new(patch_len: usize) -> Self {
        Sequence { tokens: Vec::new(), features: Vec::new(), audio_mask: Vec::new(), patch_len }
    }

    /// Zero-shot layout: the text's tokens (the trailing `AUDIO_START` already included) and
    /// no audio.
    pub fn zero_shot(tokens: Vec<i64>, patch_len: usize) -> Self {
        let mut s = Self::new(patch_len);
        s.push_text(&tokens);
        s
    }

    /// The layout of every mode: `[103, ref…, 104]` when a reference clip is given, then the
    /// text tokens (prompt transcript + target, `AUDIO_START` included), then the prompt
    /// clip's patches in continuation modes. `reference` and `prompt` hold
    /// `patches × patch_len` encoded features.
    pub fn build(text_tokens: &[i64], reference: Option<&[f32]>, prompt: Option<&[f32]>, patch_len: usize) -> Self {
        let mut s = Self::new(patch_len);
        if let Some(reference) = reference {
            s.push_text(&[REF_AUDIO_START]);
            s.push_audio(reference);
            s.push_text(&[REF_AUDIO_END]);
        }
        s.push_text(text_tokens);
        if let Some(prompt) = prompt {
            s.push_audio(prompt);
        }
        s
    }

    fn push_text(&mut self, tokens: &[i64]) {
        self.tokens.extend_from_slice(tokens);
        self.features.resize(self.features.len() + tokens.len() * self.patch_len, 0.0);
        self.audio_mask.resize(self.tokens.len(), false);
    }

    fn push_audio(&mut self, patches: &[f32]) {
        let n = patches.len() / self.patch_len;
        self.tokens.resize(self.tokens.len() + n, 0);
        self.features.extend_from_slice(&patches[..n * self.patch_len]);
        self.audio_mask.resize(self.tokens.len(), true);
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The audio patches that precede generation in the decoded latents (they seed the
    /// decoder in continuation modes, §6.2 step 6): when the sequence ends with prompt audio,
    /// its last `min(limit, audio positions)` patches (`[n, P, D]` rows). The limit is the
    /// architecture's ([`crate::config::Architecture::context_patches`]).
    pub fn context_patches(&self, limit: usize) -> &[f32] {
        if !self.audio_mask.last().copied().unwrap_or(false) {
            return &[];
        }
        let audio = self.audio_mask.iter().filter(|&&a| a).count();
        let n = limit.min(audio);
        // In every layout the prompt audio is the trailing run, so its last n positions are audio.
        &self.features[(self.len() - n) * self.patch_len..]
    }
}

/// The audio-to-text ratio (patches per target token) of the official cap and bad-case check.
pub const DEFAULT_RATIO_THRESHOLD: f64 = 6.0;

/// The official cap on generated patches: `min(int(ratio·target_tokens + 10), max_len)` (§6.3).
pub fn patch_cap(target_tokens: usize, max_len: usize, ratio: f64) -> usize {
    ((target_tokens as f64 * ratio + 10.0) as usize).min(max_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_and_continuation_layout() {
        // patch_len 1 keeps the feature track readable.
        let s = Sequence::build(&[7, 8, AUDIO_START], Some(&[0.5, 0.6]), Some(&[0.1, 0.2, 0.3, 0.4]), 1);
        assert_eq!(s.tokens, [REF_AUDIO_START, 0, 0, REF_AUDIO_END, 7, 8, AUDIO_START, 0, 0, 0, 0]);
        assert_eq!(s.features, [0.0, 0.5, 0.6, 0.0, 0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.4]);
        let mask: Vec<u8> = s.audio_mask.iter().map(|&a| a as u8).collect();
        assert_eq!(mask, [0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(s.context_patches(3), [0.2, 0.3, 0.4]);
        assert_eq!(s.context_patches(2), [0.3, 0.4]);
    }

    #[test]
    fn no_context_without_trailing_audio() {
        let s = Sequence::build(&[7, AUDIO_START], Some(&[0.5]), None, 1);
        assert!(s.context_patches(3).is_empty());
        let short = Sequence::build(&[AUDIO_START], None, Some(&[0.9, 0.8]), 1);
        assert_eq!(short.context_patches(3), [0.9, 0.8]);
    }
}
