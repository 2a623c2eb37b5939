//! When a live line may start playing: the worker holds a stream's chunks back until the
//! generation rate measured so far says playback, once started, reaches the line's end
//! without running dry.
//!
//! Chunk j (audio from `start_j` to `end_j` seconds into the line) must have arrived by the
//! time playback reaches `start_j`, so a start `s` seconds after the trigger works if
//! `s >= arrival_j - start_j` for every chunk. For the chunks that have come that is known;
//! for the rest it is predicted from the rate (wall seconds per audio second) and the line's
//! expected length. Faster than real time the next chunk binds (the start is the first
//! chunk's arrival); slower, the last one does (the buffer must cover the rest).
//! All times are seconds since the trigger.

/// Slack added to predicted arrivals: the worker's poll, scheduling jitter and the host block
/// that reads a chunk's first samples before playback reaches them (2048 frames at 48 kHz).
pub const MARGIN: f64 = 0.06;
/// Chunk intervals the recent rate is measured over (a slowdown shows in it before the
/// average).
const RECENT: usize = 4;

/// One chunk as it came: when, and where in the line its audio ends.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Arrival {
    at: f64,
    end: f64,
}

/// The start prediction for one live stream.
#[derive(Debug, Clone)]
pub struct StartSchedule {
    /// Expected audio seconds of the line; raised when the stream outgrows it.
    expected: f64,
    arrivals: Vec<Arrival>,
    /// The latest start the chunks that came allow: max of `arrival - start` over them.
    needed_so_far: f64,
    ended: bool,
}

impl StartSchedule {
    pub fn new(expected_seconds: f64) -> StartSchedule {
        StartSchedule { expected: expected_seconds.max(0.0), arrivals: Vec::new(), needed_so_far: 0.0, ended: false }
    }

    /// A chunk of `seconds` of audio arrived `at` seconds after the trigger.
    pub fn arrived(&mut self, at: f64, seconds: f64) {
        let start = self.audio();
        let end = start + seconds;
        self.arrivals.push(Arrival { at, end });
        self.needed_so_far = self.needed_so_far.max(at - start);
        if end >= self.expected {
            // The estimate was wrong by an unknown factor: assume at most half has come.
            self.expected = (2.0 * end).max(end + seconds);
        }
    }

    /// The stream has ended: all its audio is here, so it may start at once.
    pub fn ended(&mut self) {
        self.ended = true;
    }

    /// Audio seconds received.
    pub fn audio(&self) -> f64 {
        self.arrivals.last().map_or(0.0, |a| a.end)
    }

    /// The line's expected length now.
    #[cfg(test)]
    pub fn expected_seconds(&self) -> f64 {
        self.expected
    }

    /// The predicted start, as of `now`; `None` before the first chunk (nothing is known of
    /// the rate yet).
    pub fn start_at(&self, now: f64) -> Option<f64> {
        let last = *self.arrivals.last()?;
        if self.ended {
            return Some(last.at.min(now));
        }
        let chunk = last.end - self.arrivals.len().checked_sub(2).map_or(0.0, |i| self.arrivals[i].end);
        let rate = self.rate(now, chunk);
        let remaining = (self.expected - last.end).max(0.0);
        let mut start = self.needed_so_far;
        if remaining > 0.0 && chunk > 0.0 {
            let next_len = chunk.min(remaining);
            let next = last.at + rate * next_len - last.end;
            let final_chunk = last.at + rate * remaining - (self.expected - next_len);
            start = start.max(next.max(final_chunk) + MARGIN);
        }
        Some(start)
    }

    /// Whether playback may start `now`.
    pub fn should_start(&self, now: f64) -> bool {
        self.start_at(now).is_some_and(|start| now >= start)
    }

    /// Wall seconds per audio second: time to the first chunk over its audio (an
    /// overestimate, as it holds the prefill), then the larger of the average since the
    /// first chunk and the recent rate, and never below what a chunk overdue `now` shows.
    fn rate(&self, now: f64, chunk: f64) -> f64 {
        let n = self.arrivals.len();
        let first = self.arrivals[0];
        let last = self.arrivals[n - 1];
        let measured = if n == 1 {
            first.at / first.end
        } else {
            let recent = self.arrivals[n - 1 - RECENT.min(n - 1)];
            let average = (last.at - first.at) / (last.end - first.end);
            average.max((last.at - recent.at) / (last.end - recent.end))
        };
        let overdue = if chunk > 0.0 { (now - last.at) / chunk } else { 0.0 };
        let rate = measured.max(overdue);
        if rate.is_finite() { rate.max(0.0) } else { f64::MAX }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VoxCPM2's chunk: one patch.
    const CHUNK: f64 = 0.16;
    /// How finely the tests step the clock between arrivals, as the worker polls.
    const STEP: f64 = 0.001;

    /// Arrivals of `chunks` chunks from an engine at `rtf` that takes `first` for the first.
    fn steady(chunks: usize, rtf: f64, first: f64) -> Vec<(f64, f64)> {
        (0..chunks).map(|k| (first + rtf * CHUNK * k as f64, CHUNK)).collect()
    }

    /// The least start that plays the whole stream without running dry.
    fn least_start(stream: &[(f64, f64)]) -> f64 {
        let mut offset = 0.0;
        let mut least = 0.0f64;
        for &(at, seconds) in stream {
            least = least.max(at - offset);
            offset += seconds;
        }
        least
    }

    /// Plays `stream` through a schedule expecting `expected` seconds, stepping the clock as
    /// the worker does, and returns when it released playback (the end if it never did
    /// before).
    fn release(stream: &[(f64, f64)], expected: f64) -> f64 {
        let mut schedule = StartSchedule::new(expected);
        let mut now = 0.0;
        let mut next = 0;
        loop {
            while next < stream.len() && stream[next].0 <= now {
                schedule.arrived(stream[next].0, stream[next].1);
                next += 1;
            }
            if next == stream.len() {
                schedule.ended();
            }
            if schedule.should_start(now) {
                return now;
            }
            now += STEP;
            assert!(now < 1000.0, "never started");
        }
    }

    #[test]
    fn faster_than_real_time_starts_at_the_first_chunk() {
        for rtf in [0.1, 0.3, 0.5] {
            let stream = steady(20, rtf, rtf * CHUNK);
            let started = release(&stream, 20.0 * CHUNK);
            assert!((started - stream[0].0).abs() <= STEP, "rtf {rtf}: started at {started}, not the first chunk");
        }
    }

    #[test]
    fn a_slow_first_chunk_of_a_fast_engine_starts_once_the_rate_shows() {
        // Prefill makes the first chunk look slow; the second shows the engine is fast.
        let stream: Vec<_> = (0..20).map(|k| (0.4 + 0.05 * k as f64, CHUNK)).collect();
        let started = release(&stream, 20.0 * CHUNK);
        assert!(started <= stream[1].0 + STEP, "started at {started}");
        assert!(started >= least_start(&stream));
    }

    #[test]
    fn rtf_2_and_3_start_when_the_buffer_covers_the_rest() {
        for rtf in [2.0, 3.0] {
            for first in [rtf * CHUNK, 0.5 + rtf * CHUNK] {
                let stream = steady(25, rtf, first);
                let least = least_start(&stream);
                let started = release(&stream, 25.0 * CHUNK);
                assert!(started >= least, "rtf {rtf}: started at {started}, before {least}: it would run dry");
                assert!(started <= least + MARGIN + 2.0 * STEP, "rtf {rtf}: started at {started}, least {least}");
                assert!(started < stream.last().unwrap().0, "rtf {rtf}: waited for the whole line");
            }
        }
    }

    #[test]
    fn a_longer_expected_line_waits_longer_and_a_shorter_one_sooner() {
        let stream = steady(25, 2.0, 0.32);
        let exact = release(&stream, 4.0);
        assert!(release(&stream, 5.0) > exact + 0.5);
        assert!(release(&stream, 3.0) < exact - 0.5);
    }

    #[test]
    fn an_estimate_too_short_is_corrected_as_chunks_arrive() {
        // Expected: one chunk. The stream shows more is coming and the start moves with it.
        let stream = steady(2, 3.0, 3.0 * CHUNK);
        let mut schedule = StartSchedule::new(CHUNK / 2.0);
        schedule.arrived(stream[0].0, stream[0].1);
        assert!(schedule.expected_seconds() >= 2.0 * CHUNK, "{}", schedule.expected_seconds());
        let started = release(&stream, CHUNK / 2.0);
        assert!(started >= least_start(&stream), "started at {started}: it ran dry");
    }

    #[test]
    fn a_rate_that_slows_before_the_start_is_followed() {
        // RTF 2 for three chunks, then 3: the start waits for the slower rate.
        let mut stream = steady(3, 2.0, 0.32);
        let slow_from = stream[2].0;
        stream.extend((1..23).map(|k| (slow_from + 3.0 * CHUNK * k as f64, CHUNK)));
        let started = release(&stream, 25.0 * CHUNK);
        assert!(started >= least_start(&stream), "started at {started}: it ran dry");
        assert!(started > least_start(&steady(25, 2.0, 0.32)) + 1.0, "the slowdown was not followed");
    }

    #[test]
    fn a_chunk_overdue_pushes_the_start_later_before_it_comes() {
        let mut schedule = StartSchedule::new(10.0 * CHUNK);
        schedule.arrived(0.1, CHUNK);
        schedule.arrived(0.2, CHUNK);
        let on_time = schedule.start_at(0.2).unwrap();
        assert!(schedule.start_at(1.0).unwrap() > on_time + 1.0);
    }

    #[test]
    fn a_stream_that_ends_early_starts_at_once() {
        let mut schedule = StartSchedule::new(100.0);
        schedule.arrived(0.5, CHUNK);
        schedule.arrived(1.0, CHUNK);
        assert!(!schedule.should_start(1.0), "a 100 s line at RTF 3 waits");
        schedule.ended();
        assert!(schedule.should_start(1.0));
        assert_eq!(schedule.start_at(1.0), Some(1.0));
    }

    #[test]
    fn nothing_starts_before_the_first_chunk() {
        let schedule = StartSchedule::new(1.0);
        assert_eq!(schedule.start_at(5.0), None);
        assert!(!schedule.should_start(5.0));
    }
}
