//! TextToSpeech in every prompting mode, on the tiny fixture checkpoint.

use std::ops::ControlFlow;

use crate::common::*;
use voxcpm_engine::clip::ClipPadding;
use voxcpm_engine::noise::SeededNoise;
use voxcpm_engine::pipeline::{PromptClip, SpeechOptions, SpeechRequest, TextToSpeech};

fn tts() -> TextToSpeech {
    TextToSpeech::load(&fixtures().join("tiny/checkpoint"), &load_options()).unwrap()
}

/// A deterministic 16 kHz test clip.
fn clip(samples: usize) -> Vec<f32> {
    (0..samples).map(|i| 0.3 * (i as f32 * 0.031).sin() + 0.1 * (i as f32 * 0.17).sin()).collect()
}

fn request(reference: Option<Vec<f32>>, prompt: Option<PromptClip>) -> SpeechRequest {
    let options = SpeechOptions { min_len: 3, max_len: 3, ..Default::default() };
    SpeechRequest { text: "hello world".into(), reference_audio: reference, prompt, options }
}

#[test]
fn every_mode_yields_whole_patches_of_generated_audio_only() {
    let tts = tts();
    let prompt = || Some(PromptClip { audio: clip(5000), text: "你好".into() });
    for (mode, req) in [
        ("zero-shot", request(None, None)),
        ("reference", request(Some(clip(3000)), None)),
        ("continuation", request(None, prompt())),
        ("both", request(Some(clip(3000)), prompt())),
    ] {
        let audio = tts.speak(&req, &mut SeededNoise::new(3), |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(audio.len(), 3 * tts.patch_samples(), "{mode}: the prompt's context audio is cut off");
        assert!(audio.iter().all(|x| x.is_finite()), "{mode}");
    }
}

#[test]
fn same_seed_same_audio_other_seed_other_audio() {
    let tts = tts();
    let req = request(Some(clip(3000)), None);
    let a = tts.speak(&req, &mut SeededNoise::new(11), |_| ControlFlow::Continue(())).unwrap();
    let b = tts.speak(&req, &mut SeededNoise::new(11), |_| ControlFlow::Continue(())).unwrap();
    let c = tts.speak(&req, &mut SeededNoise::new(12), |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn clips_are_padded_to_whole_patches_on_the_official_side() {
    let tts = tts();
    let patch_len = 4 * 8;
    // 3000 samples at hop 640 and patch 4 pad to 5120: two patches either way.
    let left = tts.encode_clip(&clip(3000), ClipPadding::Left).unwrap();
    let right = tts.encode_clip(&clip(3000), ClipPadding::Right).unwrap();
    assert_eq!((left.len(), right.len()), (2 * patch_len, 2 * patch_len));
    assert_ne!(left, right, "padding side changes the encoding");
}

#[test]
fn bad_clips_are_rejected_with_the_reason() {
    let tts = tts();
    let short = tts.encode_clip(&clip(100), ClipPadding::Right).unwrap_err().to_string();
    assert!(short.contains("shorter than one latent frame"), "{short}");
    let mut nan = clip(3000);
    nan[7] = f32::NAN;
    let err = tts.encode_clip(&nan, ClipPadding::Left).unwrap_err().to_string();
    assert!(err.contains("non-finite sample at index 7"), "{err}");
    let blank = SpeechRequest { text: " \t".into(), ..Default::default() };
    assert!(tts.speak(&blank, &mut SeededNoise::new(0), |_| ControlFlow::Continue(())).is_err());
}

#[test]
fn streamed_chunks_are_whole_patches_and_equal_the_offline_audio() {
    let tts = tts();
    for req in [request(None, None), request(Some(clip(3000)), None)] {
        let offline = tts.speak(&req, &mut SeededNoise::new(5), |_| ControlFlow::Continue(())).unwrap();
        let mut streamed = Vec::new();
        tts.speak_streaming(&req, &mut SeededNoise::new(5), |chunk| {
            assert_eq!(chunk.len(), tts.patch_samples());
            streamed.extend_from_slice(chunk);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_close("stream vs offline", &streamed, &offline, 1e-5);
    }
}

#[test]
fn too_long_audio_is_generated_again_up_to_the_retry_limit() {
    let tts = tts();
    // "hello world" is 2 tokens: 15 patches is at least 6 per token, a bad case every time.
    let long = SpeechOptions { min_len: 15, max_len: 15, ..SpeechOptions::default() };
    let attempts = |options: SpeechOptions| {
        let req = SpeechRequest { text: "hello world".into(), options, ..Default::default() };
        let mut seen = Vec::new();
        tts.speak(&req, &mut SeededNoise::new(1), |p| {
            if p.patches == 1 {
                seen.push(p.attempt);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        seen
    };
    assert_eq!(attempts(long), [1, 2, 3]);
    assert_eq!(attempts(SpeechOptions { retry_badcase_max_times: 2, ..long }), [1, 2]);
    assert_eq!(attempts(SpeechOptions { retry_badcase: false, ..long }), [1]);
    // A higher ratio makes 15 patches acceptable (and raises the cap to match).
    assert_eq!(attempts(SpeechOptions { retry_badcase_ratio_threshold: 8.0, ..long }), [1]);
}

#[test]
fn breaking_out_of_progress_cancels_the_generation() {
    let tts = tts();
    let req = request(None, None);
    let err = tts.speak(&req, &mut SeededNoise::new(1), |_| ControlFlow::Break(())).unwrap_err();
    assert!(matches!(err, voxcpm_engine::Error::Cancelled), "{err}");
    let err = tts.speak_streaming(&req, &mut SeededNoise::new(1), |_| ControlFlow::Break(())).unwrap_err();
    assert!(matches!(err, voxcpm_engine::Error::Cancelled), "{err}");
}
