//! Text and prompt audio in, audio out, against the official `generate` / `generate_streaming`
//! (tokenizer, prompt encoding, sequence layouts and context handling all included).

use std::ops::ControlFlow;

use crate::common::*;
use voxcpm_engine::clip::ClipPadding;
use voxcpm_engine::noise::ReplayNoise;
use voxcpm_engine::pipeline::TextToSpeech;
use voxcpm_engine::testkit::parity::{ParityCase, TensorFile};

#[test]
fn pipeline_cases_match_the_reference() {
    let cases = case_files("pipeline_");
    assert!(cases.len() >= 5, "expected the committed pipeline cases, found {}", cases.len());
    let mut streamed_cases = 0;
    for (checkpoint, path) in cases {
        let name = path.display().to_string();
        let tts = TextToSpeech::load(&checkpoint, &load_options()).unwrap();
        let ParityCase::Pipeline(case) = ParityCase::read(&path).unwrap() else { panic!("{name} is a pipeline case") };
        let file = TensorFile::read(&path).unwrap();
        let sequence = tts.prepare(&case.request).unwrap().sequence;
        assert_eq!(sequence.tokens, file.i64("text_ids").unwrap(), "{name} token track");
        let mask: Vec<bool> = file.u8("audio_mask").unwrap().iter().map(|&m| m == 1).collect();
        assert_eq!(sequence.audio_mask, mask, "{name} audio mask");
        assert_close(&format!("{name} features"), &sequence.features, &file.f32("features").unwrap(), 1e-5);

        let out = case.run(&tts, &path).unwrap();
        assert_close(&format!("{name} audio"), &out.audio, case.audio.as_ref().unwrap(), AUDIO_TOLERANCE);

        if file.contains("audio_stream") {
            let config = tts.model().config();
            let mut noise = ReplayNoise::new(case.noise.clone(), config.patch_size * config.feat_dim);
            let mut streamed = Vec::new();
            tts.speak_streaming(&case.request, &mut noise, |chunk| {
                streamed.extend_from_slice(chunk);
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_close(&format!("{name} stream"), &streamed, &file.f32("audio_stream").unwrap(), AUDIO_TOLERANCE);
            streamed_cases += 1;
        }
    }
    assert!(streamed_cases >= 1, "a streaming case is committed");
}

#[test]
fn prompt_and_reference_encoding_match_the_reference() {
    let mut checked = 0;
    for (checkpoint, path) in case_files("pipeline_") {
        let tts = TextToSpeech::load(&checkpoint, &load_options()).unwrap();
        let file = TensorFile::read(&path).unwrap();
        for (audio, features, padding) in [
            ("reference_audio", "reference_features", ClipPadding::Right),
            ("prompt_audio", "prompt_features", ClipPadding::Left),
        ] {
            if file.contains(audio) && file.contains(features) {
                let encoded = tts.encode_clip(&file.f32(audio).unwrap(), padding).unwrap();
                let name = format!("{} {features}", path.display());
                assert_close(&name, &encoded, &file.f32(features).unwrap(), 1e-5);
                checked += 1;
            }
        }
    }
    assert!(checked >= 4, "reference and prompt encodings are covered ({checked} checked)");
}
