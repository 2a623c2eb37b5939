//! Bad input inside a real CLAP host: a missing or unreadable voice file, a model folder that
//! does not exist, a model whose weights hold NaN. Each time the plugin outputs silence (never
//! a non-finite sample), logs what is wrong (the editor shows the same status), and the host
//! carries on; the same instance plays again once the input is fixed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use voxcpm_host_tests::clap::{
    Instance, Run, edit_project, edit_state, entry, first_sound, instance, play, set_offline,
};
use voxcpm_host_tests::{demo_model, wait_for_log};

const RATE: u32 = 48_000;
const BLOCKS: [usize; 4] = [512, 31, 256, 7];

/// Plays line 1 offline (the plugin waits for its render) and returns the left channel.
fn play_line_one(plugin: &mut Instance) -> Vec<f32> {
    set_offline(plugin, true);
    let run = Run { rate: RATE, frames: 96_000, blocks: &BLOCKS, notes: &[(100, 60)], pace: Duration::ZERO };
    play(plugin, &run).left
}

fn assert_silent_and_logged(plugin: &mut Instance, what: &str) {
    let left = play_line_one(plugin);
    assert!(left.iter().all(|s| *s == 0.0), "{what}: the plugin made sound (or a non-finite sample)");
    assert!(
        wait_for_log(what, Duration::from_secs(30)),
        "{what} is not named in the log:\n{}",
        voxcpm_host_tests::plugin_log()
    );
}

#[test]
fn a_missing_voice_file_gives_silence_and_an_error_naming_it_then_plays_once_fixed() {
    let entry = entry();
    let mut plugin = instance(&entry);
    edit_project(&mut plugin, |p| p["voice"] = Value::from("/nonexistent/voice-missing.wav"));
    assert_silent_and_logged(&mut plugin, "voice-missing.wav");

    edit_project(&mut plugin, |p| p["voice"] = Value::Null);
    assert!(first_sound(&play_line_one(&mut plugin)).is_some(), "no speech after the voice was fixed");
}

#[test]
fn a_voice_file_that_is_not_audio_gives_silence_and_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("voice-not-a-wav.wav");
    std::fs::write(&bogus, b"these bytes are not a WAV file").unwrap();
    let entry = entry();
    let mut plugin = instance(&entry);
    edit_project(&mut plugin, |p| p["lines"][0]["voice"] = Value::from(bogus.display().to_string()));
    assert_silent_and_logged(&mut plugin, "voice-not-a-wav.wav");
}

#[test]
fn a_model_folder_that_does_not_exist_gives_silence_and_an_error_naming_it() {
    let entry = entry();
    let mut plugin = instance(&entry);
    edit_project(&mut plugin, |p| p["model"] = Value::from("/nonexistent/model-folder"));
    assert_silent_and_logged(&mut plugin, "/nonexistent/model-folder");

    edit_project(&mut plugin, |p| p["model"] = Value::Null);
    assert!(first_sound(&play_line_one(&mut plugin)).is_some(), "no speech after the model was fixed");
}

#[test]
fn a_live_stream_the_engine_refuses_gives_silence_and_an_error_naming_it_then_plays_once_fixed() {
    let entry = entry();
    let mut plugin = instance(&entry);
    edit_state(&mut plugin, |state| state["params"]["live"] = json!({ "bool": true }));
    edit_project(&mut plugin, |p| p["voice"] = Value::from("/nonexistent/live-voice-missing.wav"));
    assert_silent_and_logged(&mut plugin, "live-voice-missing.wav");

    edit_project(&mut plugin, |p| p["voice"] = Value::Null);
    assert!(first_sound(&play_line_one(&mut plugin)).is_some(), "no live speech after the voice was fixed");
}

/// A copy of the demo checkpoint whose flow-matching output bias is NaN: every patch, and so
/// the audio, is NaN, while the rest of the model loads and runs as usual.
fn nan_checkpoint(dir: &Path) -> PathBuf {
    for file in std::fs::read_dir(demo_model()).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, dir.join(file.file_name().unwrap())).unwrap();
    }
    let weights = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let tensor = &header["feat_decoder.estimator.out_proj.bias"];
    assert_eq!(tensor["dtype"], "F32");
    let range = |i: usize| 8 + header_len + tensor["data_offsets"][i].as_u64().unwrap() as usize;
    for value in bytes[range(0)..range(1)].chunks_exact_mut(4) {
        value.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(&weights, bytes).unwrap();
    dir.to_owned()
}

#[test]
fn a_model_that_makes_nan_audio_gives_silence_never_a_non_finite_sample() {
    let dir = tempfile::tempdir().unwrap();
    let entry = entry();
    let mut plugin = instance(&entry);
    edit_project(&mut plugin, |p| p["model"] = Value::from(nan_checkpoint(dir.path()).display().to_string()));
    assert_silent_and_logged(&mut plugin, "non-finite");

    edit_project(&mut plugin, |p| p["model"] = Value::Null);
    assert!(first_sound(&play_line_one(&mut plugin)).is_some(), "no speech after the model was fixed");
}
