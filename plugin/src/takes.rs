//! Takes: the variations of one line, each rendered with its own seed, one of them chosen to
//! play from MIDI and the play button.
//!
//! Take k (0-based) uses the seed parameter + k. So one take renders exactly what a line
//! rendered before takes existed (same seed, same render cache entry), adding takes never
//! changes the ones already there (they come back from the cache), and moving the seed
//! parameter gives a fresh set of variations, as it always did.

use std::sync::Arc;

use crate::project::{Line, MAX_TAKES};
use crate::status::LineReport;

/// The seed of take `take` when the seed parameter is `base`.
pub fn take_seed(base: u64, take: usize) -> u64 {
    base.saturating_add(take as u64)
}

/// How many takes `line` renders (1..=[`MAX_TAKES`], whatever the project holds).
pub fn take_count(line: &Line) -> usize {
    line.takes.clamp(1, MAX_TAKES)
}

/// The take MIDI plays: the one whose seed is the line's chosen seed, else take 1 (no choice
/// yet, or the seed parameter moved so that the chosen seed is no longer among the takes).
pub fn chosen_take(line: &Line, base: u64) -> usize {
    line.chosen_seed.and_then(|seed| (0..take_count(line)).find(|&take| take_seed(base, take) == seed)).unwrap_or(0)
}

/// The editor's view of one take.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TakeReport {
    pub seed: u64,
    /// State, progress, length and message, as for a line.
    pub report: LineReport,
    /// The waveform's outline once rendered ([`crate::thumbnail`]).
    pub peaks: Arc<[(f32, f32)]>,
}

/// What the editor asks the audio thread to audition: one take of one line, played once.
/// Packed in one atomic word ([`pack`]/[`unpack`]) so the editor sets it and the audio thread
/// takes it without a lock; a newer request replaces one not yet taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audition {
    pub line: usize,
    pub take: usize,
    /// Stop what plays first (the retrigger mode when it was asked for).
    pub cut: bool,
}

/// 0 means no request.
pub fn pack(audition: Audition) -> u32 {
    let index = audition.line * MAX_TAKES + audition.take.min(MAX_TAKES - 1);
    ((index as u32) << 1 | u32::from(audition.cut)) + 1
}

pub fn unpack(word: u32) -> Option<Audition> {
    let value = word.checked_sub(1)?;
    let index = (value >> 1) as usize;
    Some(Audition { line: index / MAX_TAKES, take: index % MAX_TAKES, cut: value & 1 == 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_k_uses_the_seed_parameter_plus_k_and_one_take_is_the_seed_itself() {
        assert_eq!((0..4).map(|k| take_seed(7, k)).collect::<Vec<_>>(), [7, 8, 9, 10]);
        assert_eq!(take_seed(u64::MAX, 3), u64::MAX, "no overflow");
        assert_eq!(chosen_take(&Line::new("one take"), 7), 0);
    }

    #[test]
    fn the_chosen_seed_picks_its_take_and_falls_back_to_take_1_when_it_is_not_among_them() {
        let line = Line { takes: 4, chosen_seed: Some(9), ..Line::new("x") };
        assert_eq!(chosen_take(&line, 7), 2, "seeds 7, 8, 9, 10");
        assert_eq!(chosen_take(&line, 9), 0);
        assert_eq!(chosen_take(&line, 20), 0, "the seed parameter moved past the choice");
        let fewer = Line { takes: 2, ..line.clone() };
        assert_eq!(chosen_take(&fewer, 7), 0, "seed 9 is take 3, and there are two takes");
        let too_many = Line { takes: 1000, chosen_seed: Some(7 + MAX_TAKES as u64 - 1), ..line };
        assert_eq!(take_count(&too_many), MAX_TAKES);
        assert_eq!(chosen_take(&too_many, 7), MAX_TAKES - 1);
    }

    #[test]
    fn an_audition_request_survives_its_packing() {
        assert_eq!(unpack(0), None);
        for line in [0, 1, 63, 127] {
            for take in 0..MAX_TAKES {
                for cut in [false, true] {
                    let audition = Audition { line, take, cut };
                    assert_ne!(pack(audition), 0);
                    assert_eq!(unpack(pack(audition)), Some(audition));
                }
            }
        }
    }
}
