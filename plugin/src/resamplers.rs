//! A voice's resamplers, one per source rate it can play. The worker builds them (off the audio
//! thread) and the player hands one to each voice. A voice keeps two: the model's rate, and the
//! rate before it while a line or stream at that rate may still be playing; so a new model
//! never cuts a line short, and a live stream that starts while its model loads finds the
//! model's rate once its first samples come.

use voxcpm_engine::resample::StreamResampler;

#[derive(Default)]
pub struct Resamplers {
    slots: [Option<Box<StreamResampler>>; 2],
    /// The slot resampling what the voice plays.
    active: Option<usize>,
}

impl Resamplers {
    /// The source rates there is a resampler for.
    pub fn source_rates(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().flatten().map(|r| r.source_rate())
    }

    pub fn has(&self, source_rate: u32) -> bool {
        self.source_rates().any(|rate| rate == source_rate)
    }

    /// Keeps `resampler` in place of one that is not in use (an empty slot first, then one for
    /// the same rate); returns the one it replaced, to be freed off the audio thread.
    pub fn adopt(&mut self, resampler: Box<StreamResampler>) -> Option<Box<StreamResampler>> {
        let rate = resampler.source_rate();
        let free = |slot: &usize| Some(*slot) != self.active;
        let slot = (0..self.slots.len())
            .filter(free)
            .min_by_key(|&slot| match &self.slots[slot] {
                None => 0,
                Some(held) if held.source_rate() == rate => 1,
                Some(_) => 2,
            })
            .unwrap_or(0);
        self.slots[slot].replace(resampler)
    }

    /// Makes the resampler for `source_rate` the active one, ready for a new stream; false if
    /// there is none.
    pub fn select(&mut self, source_rate: u32) -> bool {
        self.active = self.slots.iter().position(|r| r.as_ref().is_some_and(|r| r.source_rate() == source_rate));
        match self.active() {
            Some(resampler) => {
                resampler.reset();
                true
            }
            None => false,
        }
    }

    pub fn active(&mut self) -> Option<&mut StreamResampler> {
        self.active.and_then(|slot| self.slots[slot].as_deref_mut())
    }

    /// Nothing is playing: every resampler may be replaced.
    pub fn release(&mut self) {
        self.active = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resampler(from: u32) -> Box<StreamResampler> {
        Box::new(StreamResampler::new(from, 48_000).unwrap())
    }

    fn rates(resamplers: &Resamplers) -> Vec<u32> {
        let mut rates: Vec<u32> = resamplers.source_rates().collect();
        rates.sort_unstable();
        rates
    }

    #[test]
    fn the_one_in_use_is_never_replaced_and_a_newcomer_is_always_kept() {
        let mut resamplers = Resamplers::default();
        assert!(!resamplers.select(16_000), "nothing to select yet");
        assert!(resamplers.adopt(resampler(16_000)).is_none());
        assert!(resamplers.select(16_000));
        assert!(resamplers.adopt(resampler(44_100)).is_none(), "an empty slot first");
        for newcomer in [24_000, 48_000, 44_100] {
            let replaced = resamplers.adopt(resampler(newcomer)).expect("both slots were full");
            assert_ne!(replaced.source_rate(), 16_000, "the one in use was replaced");
            let mut expected = vec![16_000, newcomer];
            expected.sort_unstable();
            assert_eq!(rates(&resamplers), expected, "the newcomer is kept beside the one in use");
        }
        assert_eq!(resamplers.active().map(|r| r.source_rate()), Some(16_000));

        resamplers.release();
        let replaced = resamplers.adopt(resampler(44_100)).expect("both slots were full");
        assert_eq!(replaced.source_rate(), 44_100, "the same rate is replaced first");
        assert_eq!(rates(&resamplers), [16_000, 44_100]);
    }
}
