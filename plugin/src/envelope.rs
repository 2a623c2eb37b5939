//! A voice's level: the gain its note-on's velocity asked for and, once its key is let go in
//! gate mode, the fade to silence. Plain arithmetic per sample, for the audio thread.

/// How long a gated voice fades out after its note-off. Stopping speech mid-word in one sample
/// is a step in the waveform, heard as a click; a fade lasting one cycle of a 67 Hz tone (below
/// the lowest speaking voice) changes the level more slowly than any cycle of the speech, so
/// the stop is heard as a quick release, while the voice still stops as the key comes up.
pub const RELEASE_SECONDS: f32 = 0.015;

/// The release fade's length in samples at `host_rate` (at least one).
pub fn release_samples(host_rate: u32) -> u32 {
    ((host_rate as f32 * RELEASE_SECONDS).round() as u32).max(1)
}

/// The gain of sample `k` (from 0) of a release fade `len` samples long: half a raised cosine,
/// from just under 1 to just over 0, silence after it. Its slope is zero where it starts and
/// where it ends, so neither end puts a corner into the waveform (a linear fade puts one at
/// each end), and it falls monotonically in between.
pub fn release_gain(k: u32, len: u32) -> f32 {
    let phase = (f64::from(k) + 1.0) / (f64::from(len) + 1.0);
    (0.5 + 0.5 * (std::f64::consts::PI * phase).cos()) as f32
}

/// The gain of a note-on's velocity (0..1): its square. Loudness is heard on a log scale: the
/// square takes the top half of the velocity range over 12 dB and reaches -40 dB at 0.1, where
/// a straight line spans 6 dB and soft notes still sound loud. Outside 0..1 it is clamped; a
/// NaN velocity (a broken host) plays at full level, as velocity Off does.
pub fn velocity_gain(velocity: f32) -> f32 {
    if velocity.is_nan() {
        return 1.0;
    }
    let velocity = velocity.clamp(0.0, 1.0);
    velocity * velocity
}

/// A voice's level for one line: full unless a velocity asked for less, then the release fade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Envelope {
    gain: f32,
    release: Option<Release>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Release {
    /// Samples faded so far.
    done: u32,
    len: u32,
}

impl Default for Envelope {
    fn default() -> Self {
        Envelope::new(1.0)
    }
}

impl Envelope {
    /// A level of `gain` (finite, 0..1: a [`velocity_gain`]) until released.
    pub fn new(gain: f32) -> Envelope {
        Envelope { gain, release: None }
    }

    /// Starts the fade, `len` samples long, from the next sample on; a fade under way goes on.
    pub fn release(&mut self, len: u32) {
        if self.release.is_none() {
            self.release = Some(Release { done: 0, len: len.max(1) });
        }
    }

    pub fn is_released(&self) -> bool {
        self.release.is_some()
    }

    /// Whether the fade has played its last sample.
    pub fn is_over(&self) -> bool {
        self.release.is_some_and(|r| r.done >= r.len)
    }

    /// `sample` at the voice's level, moving the fade on by one sample.
    pub fn apply(&mut self, sample: f32) -> f32 {
        match &mut self.release {
            None => sample * self.gain,
            Some(release) => {
                let fade = if release.done < release.len { release_gain(release.done, release.len) } else { 0.0 };
                release.done = release.done.saturating_add(1);
                sample * self.gain * fade
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_fade_falls_monotonically_from_under_one_to_silence_in_its_length() {
        for rate in [8_000, 44_100, 48_000, 96_000, 192_000] {
            let len = release_samples(rate);
            let expected = (rate as f32 * RELEASE_SECONDS).round() as u32;
            assert_eq!(len, expected, "{rate} Hz: the fade lasts RELEASE_SECONDS");
            let gains: Vec<f32> = (0..len).map(|k| release_gain(k, len)).collect();
            assert!(gains[0] < 1.0 && gains[0] > 0.99, "{rate} Hz: starts just under full level: {}", gains[0]);
            let last = gains[len as usize - 1];
            assert!(last > 0.0 && last < 1e-3, "{rate} Hz: ends just over silence: {last}");
            assert!(gains.windows(2).all(|w| w[1] < w[0]), "{rate} Hz: the gain falls at every sample");
            // Flat at both ends: the first and last steps are the smallest ones.
            let steps: Vec<f32> = gains.windows(2).map(|w| w[0] - w[1]).collect();
            let largest = steps.iter().copied().fold(0.0, f32::max);
            assert!(steps[0] < largest / 10.0 && steps[steps.len() - 1] < largest / 10.0, "{rate} Hz: {steps:?}");
        }
        assert_eq!(release_samples(1), 1, "never shorter than a sample");
    }

    #[test]
    fn velocity_maps_to_its_square_and_bad_velocities_stay_in_range() {
        assert_eq!(velocity_gain(1.0), 1.0);
        assert_eq!(velocity_gain(0.5), 0.25);
        assert_eq!(velocity_gain(0.0), 0.0);
        assert_eq!(velocity_gain(-3.0), 0.0);
        assert_eq!(velocity_gain(7.0), 1.0);
        assert_eq!(velocity_gain(f32::INFINITY), 1.0);
        assert_eq!(velocity_gain(f32::NEG_INFINITY), 0.0);
        assert_eq!(velocity_gain(f32::NAN), 1.0);
    }

    #[test]
    fn an_envelope_scales_by_its_gain_then_fades_once_released() {
        let mut envelope = Envelope::new(0.25);
        assert_eq!(envelope.apply(0.5), 0.125);
        envelope.release(4);
        assert!(envelope.is_released() && !envelope.is_over());
        let faded: Vec<f32> = (0..4).map(|_| envelope.apply(0.5)).collect();
        let expected: Vec<f32> = (0..4).map(|k| 0.5 * 0.25 * release_gain(k, 4)).collect();
        assert_eq!(faded, expected);
        assert!(envelope.is_over());
        envelope.release(100);
        assert!(envelope.is_over(), "a second release does not restart the fade");
    }
}
