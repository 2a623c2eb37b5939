//! Takes in a host: a line rendered in several takes plays the chosen one from its note, and
//! the choice travels with the host's project.

use std::time::Duration;

use serde_json::json;
use voxcpm_engine::audio_io::resample;
use voxcpm_engine::runtime::{GenerateOptions, Server, ServerOptions};
use voxcpm_engine::testkit::parity::max_abs_diff;
use voxcpm_host_tests::clap::{
    Instance, Run, edit_project, entry, instance, load, play, save, set_offline, state_bytes,
};
use voxcpm_host_tests::demo_model;

use super::{BLOCKS, FIRST_LINE, RATE};

/// Where the note falls.
const NOTE_AT: usize = 1_234;

/// The engine's render of `text` on the demo model with `seed`, at the host's rate.
fn engine_take(text: &str, seed: u64) -> Vec<f32> {
    let server = Server::start(ServerOptions::new(demo_model().display().to_string())).expect("server");
    server.await_ready(Duration::from_secs(120)).expect("the model loads");
    let options = GenerateOptions { seed: Some(seed), ..GenerateOptions::default() };
    let speech = server.generate(text, &options).expect("engine render");
    resample(&speech.samples, speech.sample_rate, RATE).expect("resample")
}

/// Plays line 1's note offline and returns the left channel from the note on.
fn play_line_one(plugin: &mut Instance, length: usize) -> Vec<f32> {
    set_offline(plugin, true);
    let run =
        Run { rate: RATE, frames: NOTE_AT + length, blocks: &BLOCKS, notes: &[(NOTE_AT, 60)], pace: Duration::ZERO };
    let left = play(plugin, &run).left;
    assert!(left[..NOTE_AT].iter().all(|s| *s == 0.0), "sound before the note");
    left[NOTE_AT..].to_vec()
}

#[test]
fn a_note_plays_the_chosen_take_and_the_choice_survives_a_save_and_load() {
    let take_3 = engine_take(FIRST_LINE, 3);
    let take_1 = engine_take(FIRST_LINE, 1);
    assert!(take_3.len() > 2_000, "too short a render to tell: {}", take_3.len());
    assert!(max_abs_diff(&take_1[..2_000], &take_3[..2_000]) > 1e-3, "the takes must differ to tell them apart");
    let length = take_3.len().max(take_1.len()) + 10_000;

    let entry = entry();
    let mut first = instance(&entry);
    edit_project(&mut first, |project| {
        project["lines"][0]["takes"] = json!(3);
        project["lines"][0]["chosen_seed"] = json!(3);
    });
    let played = play_line_one(&mut first, length);
    let error = max_abs_diff(&played[..take_3.len()], &take_3);
    assert!(error < 1e-4, "the note's speech differs from take 3 (seed 3) by {error}");
    assert!(played[take_3.len()..].iter().all(|s| *s == 0.0), "sound after the take's end");

    let saved = save(&mut first);
    assert!(saved.contains(r#"\"takes\":3,\"chosen_seed\":3"#), "{saved}");
    let mut second = instance(&entry);
    assert!(load(&mut second, &state_bytes(&saved)));
    assert_eq!(play_line_one(&mut second, length), played, "the loaded project plays the same take");

    // Choosing take 1 in the loaded project: its note plays seed 1.
    edit_project(&mut second, |project| project["lines"][0]["chosen_seed"] = json!(1));
    let played = play_line_one(&mut second, length);
    let error = max_abs_diff(&played[..take_1.len()], &take_1);
    assert!(error < 1e-4, "the note's speech differs from take 1 (seed 1) by {error}");
}
