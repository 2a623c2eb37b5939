//! Auditions: the editor plays one take of a line once; the line's own clip (its chosen take,
//! what MIDI and the play button play) is left as it is.

use super::*;

const CUT: TriggerMode = TriggerMode { cut: true, live: false };

fn send_take(worker: &mut WorkerEnds, line: usize, take: usize, clip: Option<Clip>) {
    assert!(worker.to_audio.push(ToAudio::Take { line, take, clip }).is_ok());
}

fn audition(player: &Player, line: usize, take: usize) {
    player.editor_triggers.request_audition(Audition { line, take, cut: true });
}

#[test]
fn an_audition_plays_the_requested_take_once_and_the_line_keeps_its_chosen_take() {
    let (mut player, mut worker, status) = player(2, HOST_RATE);
    send_resamplers(&mut worker, 48_000, HOST_RATE);
    let chosen = Clip::new(line(), 48_000);
    let other = Clip::new(tone(48_000, 30_000), 48_000);
    send_clip(&mut worker, 1, chosen.clone());
    send_take(&mut worker, 1, 0, Some(chosen.clone()));
    send_take(&mut worker, 1, 2, Some(other.clone()));

    audition(&player, 1, 2);
    let mix = render(&mut player, 60_000);
    let alone = played_alone(other, HOST_RATE);
    assert_eq!(mix[..alone.len()], alone[..], "take 3 plays");
    assert!(mix[alone.len()..].iter().all(|s| *s == 0.0), "once");

    player.begin_block();
    player.trigger(1, CUT, false);
    let mix = render(&mut player, 60_000);
    let alone = played_alone(chosen, HOST_RATE);
    assert_eq!(mix[..alone.len()], alone[..], "the line still plays its chosen take");
    assert_eq!(status.missed_triggers.load(Ordering::Relaxed), 0);
}

#[test]
fn a_take_not_rendered_or_withdrawn_auditions_nothing_and_counts_as_missed() {
    let (mut player, mut worker, status) = player(1, HOST_RATE);
    send_resamplers(&mut worker, 48_000, HOST_RATE);
    send_take(&mut worker, 0, 1, Some(Clip::new(line(), 48_000)));
    audition(&player, 0, 4);
    assert!(render(&mut player, 4_096).iter().all(|s| *s == 0.0));
    assert_eq!(status.missed_triggers.load(Ordering::Relaxed), 1);

    send_take(&mut worker, 0, 1, None);
    audition(&player, 0, 1);
    assert!(render(&mut player, 4_096).iter().all(|s| *s == 0.0), "a withdrawn take");
    assert_eq!(status.missed_triggers.load(Ordering::Relaxed), 2);
    let retired = std::iter::from_fn(|| worker.from_audio.pop().ok());
    assert_eq!(retired.filter(|m| matches!(m, ToWorker::Retired(_))).count(), 1, "the withdrawn clip goes back");
}

/// Under nice-plug's allocation check, as `process()` runs in a debug build: an allocation
/// or a free aborts this test binary.
#[cfg(all(debug_assertions, feature = "assert_process_allocs"))]
#[test]
fn taking_takes_and_auditioning_them_never_allocate() {
    let (mut player, mut worker, _status) = player(2, HOST_RATE);
    send_resamplers(&mut worker, 48_000, HOST_RATE);
    let takes: Vec<Clip> = (0..4).map(|k| Clip::new(tone(48_000, 10_000 + k * 1_000), 48_000)).collect();
    let mut mix = vec![0.0; BLOCK];
    nice_assert_no_alloc::assert_no_alloc(|| {
        for block in 0..80 {
            if block % 10 == 0 {
                let take = block / 10 % 4;
                // Replaced takes go back to the worker, as the worker's renders come in.
                let _ = worker.to_audio.push(ToAudio::Take { line: 1, take, clip: Some(takes[take].clone()) });
                player.editor_triggers.request_audition(Audition { line: 1, take, cut: block % 20 == 0 });
            }
            player.begin_block();
            mix.fill(0.0);
            player.render(&mut mix, false);
        }
    });
    assert!(std::iter::from_fn(|| worker.from_audio.pop().ok()).count() > 0, "replaced takes went back");
}
