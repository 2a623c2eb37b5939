//! The latest clip encodings, so a voice reused line after line (a batch script, the plugin's
//! lines, a client sending the same reference) goes through the VAE encoder once: on two cores
//! encoding takes about as long as the clip itself (28.7 s for a 30 s reference).
//!
//! Entries are matched on the exact samples and padding side, never on a hash, so a hit is
//! always the same clip. The encoder is the same for every LoRA adapter (adapters touch only
//! the LMs and the DiT), so entries stay valid when adapters change.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::error::Result;
use crate::pipeline::ClipPadding;

/// Clips kept (a handful of voices; a 30 s clip at 16 kHz is under 2 MB with its encoding).
const CAPACITY: usize = 8;

struct Entry {
    samples: Vec<f32>,
    padding: ClipPadding,
    patches: Vec<f32>,
}

#[derive(Default)]
pub struct ClipCache {
    /// Most recently used first.
    entries: Mutex<VecDeque<Entry>>,
}

impl ClipCache {
    /// The encoding of `samples` padded on `padding`'s side: from the cache, or from `encode`.
    pub fn get_or_encode(
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
    use crate::error::Error;

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
