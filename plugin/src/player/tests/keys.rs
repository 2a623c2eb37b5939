//! The player as an instrument: lines held by keys, faded out at their note-off (gate mode),
//! played at their velocity's gain.

use super::*;
use crate::envelope::release_gain;

const CUT: TriggerMode = TriggerMode { cut: true, live: false };
const LIVE: TriggerMode = TriggerMode { cut: true, live: true };

/// A key or button event at a sample, as `process()` hands it to the player.
#[derive(Clone, Copy)]
enum Event {
    /// A note-on for `line` from `key` at `gain`.
    Press { line: usize, key: u8, gain: f32, mode: TriggerMode },
    /// A note-off in gate mode.
    Release(Option<u8>),
    /// The editor's play button.
    Button(usize),
}

fn press(line: usize, key: u8) -> Event {
    Event::Press { line, key, gain: 1.0, mode: OVERLAP }
}

/// Plays `frames` samples in blocks of `BLOCK`, with each event at its sample: the block is
/// rendered up to it, as `process()` splits a block.
fn play(player: &mut Player, frames: usize, events: &[(usize, Event)]) -> Vec<f32> {
    let mut mix = vec![0.0; frames];
    for (index, block) in mix.chunks_mut(BLOCK).enumerate() {
        let (start, end) = (index * BLOCK, index * BLOCK + block.len());
        player.begin_block();
        if index == 0 {
            // The editor's requests are taken at the start of a block.
            for &(_, event) in events {
                if let Event::Button(line) = event {
                    player.trigger(line, OVERLAP, false);
                }
            }
        }
        let mut cursor = 0;
        for &(at, event) in events.iter().filter(|(at, _)| (start..end).contains(at)) {
            player.render(&mut block[cursor..at - start], false);
            cursor = at - start;
            match event {
                Event::Press { line, key, gain, mode } => player.trigger_key(line, mode, false, key, gain),
                Event::Release(key) => player.release(key),
                Event::Button(_) => {}
            }
        }
        player.render(&mut block[cursor..], false);
    }
    mix
}

/// The largest step between neighbouring samples; NaN if there is one.
fn largest_step(samples: &[f32]) -> f32 {
    samples.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, |m, d| if d > m || d.is_nan() { d } else { m })
}

/// A player for two lines at 44.1 kHz: line 0 is `line()`, line 1 a tone, both made at 48 kHz.
fn two_lines() -> (Player, WorkerEnds) {
    let (player, mut worker, _status) = player(2, HOST_RATE);
    send_resamplers(&mut worker, 48_000, HOST_RATE);
    send_clip(&mut worker, 0, Clip::new(line(), 48_000));
    send_clip(&mut worker, 1, Clip::new(tone(48_000, 30_000), 48_000));
    (player, worker)
}

/// What `events` make of [`two_lines`].
fn play_two_lines(frames: usize, events: &[(usize, Event)]) -> Vec<f32> {
    play(&mut two_lines().0, frames, events)
}

#[test]
fn a_released_line_fades_out_from_its_note_offs_sample_and_is_silent_after_the_fade() {
    let (mut player, _worker) = two_lines();
    let (on, off) = (100, 5_037);
    let mix = play(&mut player, 25_000, &[(on, press(0, 60)), (off, Event::Release(Some(60)))]);
    let alone = played_alone(Clip::new(line(), 48_000), HOST_RATE);
    let fade = release_samples(HOST_RATE) as usize;
    assert_eq!(fade, 662, "15 ms at 44.1 kHz");

    assert!(mix[..on].iter().all(|s| *s == 0.0), "sound before the note-on");
    assert_eq!(mix[on..off], alone[..off - on], "the line plays as it is until its key comes up");
    let faded: Vec<f32> = (0..fade).map(|k| alone[off - on + k] * release_gain(k as u32, fade as u32)).collect();
    assert_eq!(mix[off..off + fade], faded[..], "then fades over RELEASE_SECONDS from the note-off's sample");
    assert!(mix[off + fade..].iter().all(|s| *s == 0.0), "and is silent after the fade");
    let (fade_step, line_step) = (largest_step(&mix[off - 1..=off + fade]), largest_step(&alone));
    assert!(fade_step <= line_step, "the fade steps by {fade_step}, more than the line's own {line_step}");
    assert!(!player.is_playing(), "the voice is free again");
}

#[test]
fn a_note_off_of_another_key_or_of_a_cut_or_stolen_line_changes_nothing() {
    let other_key = [(100, press(0, 60)), (4_000, press(1, 61))];
    let cut = [(100, press(0, 60)), (3_000, Event::Press { line: 1, key: 61, gain: 1.0, mode: CUT })];
    // Nine keys on eight voices, each in a later block: the ninth steals the first key's voice.
    let stolen: Vec<(usize, Event)> = (0..9).map(|i| (100 + 600 * i, press(i % 2, 60 + i as u8))).collect();
    let button = [(0, Event::Button(0))];
    let at = 6_000;
    for (case, events, key) in [
        ("another key", &other_key[..], Some(62)),
        ("a cut line", &cut[..], Some(60)),
        ("a stolen line", &stolen[..], Some(60)),
        ("the play button", &button[..], None),
    ] {
        let without = play_two_lines(40_000, events);
        let with = play_two_lines(40_000, &[events, &[(at, Event::Release(key))]].concat());
        assert!(without[at..at + 100].iter().any(|s| *s != 0.0), "{case}: lines play at the note-off");
        assert_eq!(with, without, "{case}: the note-off changed the output");
    }
    // The same note-off ends its own key's line.
    let held = play_two_lines(40_000, &[(100, press(0, 60)), (at, Event::Release(Some(60)))]);
    assert!(held[at + release_samples(HOST_RATE) as usize..].iter().all(|s| *s == 0.0));
}

#[test]
fn a_wildcard_note_off_releases_every_held_line() {
    let mix = play_two_lines(40_000, &[(100, press(0, 60)), (200, press(1, 61)), (5_000, Event::Release(None))]);
    assert!(mix[4_000..5_000].iter().any(|s| *s != 0.0));
    let fade = release_samples(HOST_RATE) as usize;
    assert!(mix[5_000 + fade..].iter().all(|s| *s == 0.0));
}

#[test]
fn each_voice_plays_at_its_own_velocitys_gain() {
    let soft = Event::Press { line: 0, key: 60, gain: 0.25, mode: OVERLAP };
    let mix = play_two_lines(40_000, &[(0, soft), (0, press(1, 61))]);
    let (a, b) = (
        played_alone(Clip::new(line(), 48_000), HOST_RATE),
        played_alone(Clip::new(tone(48_000, 30_000), 48_000), HOST_RATE),
    );
    let expected: Vec<f32> =
        (0..40_000).map(|i| a.get(i).map_or(0.0, |s| s * 0.25) + b.get(i).copied().unwrap_or(0.0)).collect();
    assert_eq!(mix, expected);

    let silent = Event::Press { line: 0, key: 60, gain: 0.0, mode: OVERLAP };
    assert!(play_two_lines(20_000, &[(0, silent)]).iter().all(|s| *s == 0.0), "velocity 0 is silence");
}

/// A player at 48 kHz whose line 0 is triggered live from key 60 at sample 0; returns its
/// stream's token.
fn live_player() -> (Player, WorkerEnds, u32) {
    let (mut player, mut worker, _status) = player(1, 48_000);
    send_resamplers(&mut worker, 48_000, 48_000);
    player.begin_block();
    player.trigger_key(0, LIVE, false, 60, 1.0);
    let Ok(ToWorker::Live { token, .. }) = worker.from_audio.pop() else { panic!("no live trigger") };
    (player, worker, token)
}

/// Pushes `speech` as one segment of stream `token`, not its last.
fn stream(worker: &mut WorkerEnds, token: u32, speech: &[f32]) {
    let chunk = worker.live_samples.write_chunk_uninit(speech.len()).unwrap();
    assert_eq!(chunk.fill_from_iter(speech.iter().copied()), speech.len());
    let segment = LiveSegment { token, len: speech.len(), end: false, sample_rate: 48_000 };
    assert!(worker.live_segments.push(segment).is_ok());
}

fn abandoned(worker: &mut WorkerEnds) -> Vec<u32> {
    std::iter::from_fn(|| worker.from_audio.pop().ok())
        .filter_map(|m| match m {
            ToWorker::LiveAbandoned { token } => Some(token),
            _ => None,
        })
        .collect()
}

#[test]
fn a_released_live_line_fades_out_and_its_stream_is_reported_abandoned() {
    let (mut player, mut worker, token) = live_player();
    let speech = tone(48_000, 30_000);
    stream(&mut worker, token, &speech);
    let mut mix = vec![0.0; 10_000];
    player.render(&mut mix[..4_000], false);
    player.release(Some(60));
    player.render(&mut mix[4_000..], false);
    mix.extend(render(&mut player, 2_000));

    let fade = release_samples(48_000) as usize;
    let played = voxcpm_engine::audio_io::resample(&speech, 48_000, 48_000).unwrap();
    assert_eq!(mix[..4_000], played[..4_000], "the stream plays until the note-off");
    let faded: Vec<f32> = (0..fade).map(|k| played[4_000 + k] * release_gain(k as u32, fade as u32)).collect();
    assert_eq!(mix[4_000..4_000 + fade], faded[..]);
    assert!(mix[4_000 + fade..].iter().all(|s| *s == 0.0));
    assert_eq!(abandoned(&mut worker), [token], "the worker is told to stop generating it");
}

#[test]
fn a_live_line_released_before_its_first_sample_never_sounds() {
    let (mut player, mut worker, token) = live_player();
    render(&mut player, 1_000);
    player.release(Some(60));
    let mut mix = render(&mut player, 1_000);
    assert_eq!(abandoned(&mut worker), [token]);
    stream(&mut worker, token, &tone(48_000, 10_000));
    mix.extend(render(&mut player, 12_000));
    assert!(mix.iter().all(|s| *s == 0.0), "the stream's samples came after the key was let go");
    assert!(!player.is_playing());
}

/// Under nice-plug's allocation check, as `process()` runs in a debug build: an allocation
/// or a free aborts this test binary.
#[cfg(all(debug_assertions, feature = "assert_process_allocs"))]
#[test]
fn pressing_and_releasing_keys_never_allocates() {
    let (mut player, _worker) = two_lines();
    let mut mix = vec![0.0; BLOCK];
    nice_assert_no_alloc::assert_no_alloc(|| {
        for block in 0..200 {
            player.begin_block();
            match block % 10 {
                0 => player.trigger_key(block / 10 % 2, OVERLAP, false, 60 + (block / 10 % 2) as u8, 0.5),
                5 => player.release(Some(60)),
                7 => player.release(None),
                _ => {}
            }
            mix.fill(0.0);
            player.render(&mut mix, false);
        }
    });
}
