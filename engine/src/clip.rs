//! Audio clips the model reads (a reference voice, a continuation prompt): the rule that pads
//! them to whole patches, and a cache of their latest encodings.
//!
//! The cache exists because a voice is reused line after line (a batch script, the plugin's
//! lines, a client sending the same reference) and on two cores the VAE encoder takes about as
//! long as the clip itself (28.7 s for a 30 s reference). Entries are matched on the exact
//! samples and padding side, never on a hash, so a hit is always the same clip. The encoder is
//! the same for every LoRA adapter (adapters touch only the LMs and the DiT), so entries stay
//! valid when adapters change.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Which side of a clip the official code pads to whole patches (§6.1): the continuation
/// prompt on the left, so its real end meets the generated audio; a reference on the right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipPadding {
    Left,
    Right,
}

/// `samples` zero-padded on `padding`'s side to a whole number of `unit`s (samples per patch),
/// as the official `_encode_wav` does. Refuses clips shorter than one latent frame (`hop`
/// samples at `rate`) and non-finite samples, naming them.
pub fn pad_to_whole_patches(
    samples: &[f32],
    unit: usize,
    hop: usize,
    rate: u32,
    padding: ClipPadding,
) -> Result<Vec<f32>> {
    if samples.len() < hop {
        return Err(Error::InvalidInput(format!(
            "audio clip of {} samples is shorter than one latent frame ({hop} samples at {rate} Hz)",
            samples.len()
        )));
    }
    if let Some(bad) = samples.iter().position(|x| !x.is_finite()) {
        return Err(Error::InvalidInput(format!("audio clip has a non-finite sample at index {bad}")));
    }
    let pad = (unit - samples.len() % unit) % unit;
    let mut padded = vec![0.0; samples.len() + pad];
    let offset = if padding == ClipPadding::Left { pad } else { 0 };
    padded[offset..offset + samples.len()].copy_from_slice(samples);
    Ok(padded)
}

/// Clips kept (a handful of voices; a 30 s clip at 16 kHz is under 2 MB with its encoding).
const CAPACITY: usize = 8;

struct Entry {
    samples: Vec<f32>,
    padding: ClipPadding,
    patches: Vec<f32>,
}

/// The latest clip encodings, most recently used first.
#[derive(Default)]
pub(crate) struct ClipCache {
    entries: Mutex<VecDeque<Entry>>,
}

impl ClipCache {
    /// The encoding of `samples` padded on `padding`'s side: from the cache, or from `encode`.
    pub(crate) fn get_or_encode(
        &self,
        samples: &[f32],
        padding: ClipPadding,
        encode: impl FnOnce() -> Result<Vec<f32>>,
    ) -> Result<Vec<f32>> {
        {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(hit) = entries.iter().position(|e| e.padding == padding && e.samples == samples) {
                let entry = entries.remove(hit).expect("the hit is in the cache");
                let patches = entry.patches.clone();
                entries.push_front(entry);
                return Ok(patches);
            }
        }
        // Encoding runs unlocked; failures are not cached.
        let patches = encode()?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.push_front(Entry { samples: samples.to_vec(), padding, patches: patches.clone() });
        entries.truncate(CAPACITY);
        Ok(patches)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn padding_fills_whole_patches_on_the_asked_side() {
        let clip = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(
            pad_to_whole_patches(&clip, 4, 2, 16_000, ClipPadding::Right).unwrap(),
            [1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            pad_to_whole_patches(&clip, 4, 2, 16_000, ClipPadding::Left).unwrap(),
            [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );
        assert_eq!(pad_to_whole_patches(&clip[..4], 4, 2, 16_000, ClipPadding::Left).unwrap(), clip[..4]);
    }

    #[test]
    fn short_and_non_finite_clips_are_named() {
        let short = pad_to_whole_patches(&[0.0; 3], 8, 4, 16_000, ClipPadding::Right).unwrap_err().to_string();
        assert!(short.contains("3 samples") && short.contains("4 samples at 16000 Hz"), "{short}");
        let nan = pad_to_whole_patches(&[0.0, f32::NAN, 0.0, 0.0], 4, 2, 16_000, ClipPadding::Left).unwrap_err();
        assert!(nan.to_string().contains("index 1"), "{nan}");
    }

    #[test]
    fn a_clip_is_encoded_once_per_padding_and_the_oldest_makes_way() {
        let cache = ClipCache::default();
        let encodes = Cell::new(0);
        let encode = |value: f32| {
            encodes.set(encodes.get() + 1);
            Ok(vec![value])
        };
        let clip = |i: usize| vec![i as f32; 10];
        assert_eq!(cache.get_or_encode(&clip(0), ClipPadding::Right, || encode(1.0)).unwrap(), [1.0]);
        assert_eq!(cache.get_or_encode(&clip(0), ClipPadding::Right, || encode(2.0)).unwrap(), [1.0]);
        assert_eq!(encodes.get(), 1, "the second request is a hit");
        assert_eq!(cache.get_or_encode(&clip(0), ClipPadding::Left, || encode(3.0)).unwrap(), [3.0]);
        assert_eq!(encodes.get(), 2, "the other padding side is another encoding");

        for i in 1..=CAPACITY {
            cache.get_or_encode(&clip(i), ClipPadding::Right, || encode(0.0)).unwrap();
        }
        let before = encodes.get();
        cache.get_or_encode(&clip(0), ClipPadding::Right, || encode(4.0)).unwrap();
        assert_eq!(encodes.get(), before + 1, "the oldest entry was evicted");
    }

    #[test]
    fn failures_are_not_cached() {
        let cache = ClipCache::default();
        let clip = [0.5f32; 4];
        let failed = cache.get_or_encode(&clip, ClipPadding::Right, || Err(Error::InvalidInput("no".into())));
        assert!(failed.is_err());
        assert_eq!(cache.get_or_encode(&clip, ClipPadding::Right, || Ok(vec![7.0])).unwrap(), [7.0]);
    }
}
