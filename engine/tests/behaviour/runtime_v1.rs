//! The runtime `Server` on v1 checkpoints (VoxCPM-0.5B and VoxCPM1.5 flavours): `v1_tiny`
//! (16 kHz, patch 2, 1280 samples a patch) and `v1_odd` (44.1 kHz, patch 3, 126 samples a
//! patch, no `architecture` key). Everything VoxCPM2 does through the runtime but the reference
//! clip, which v1 refuses by name while the server goes on serving.

use std::ops::ControlFlow;
use std::path::Path;

use super::runtime::{options, write_wav};
use crate::common::*;
use voxcpm_engine::audio_io::load_clip;
use voxcpm_engine::config::Architecture;
use voxcpm_engine::noise::SeededNoise;
use voxcpm_engine::pipeline::{PromptClip, SpeechRequest, TextToSpeech};
use voxcpm_engine::runtime::{GenerateOptions, Server, ServerOptions, Status};

/// A v1 fixture: its directory name, output (= encoder) rate and samples per patch.
struct V1Fixture {
    config: &'static str,
    rate: u32,
    patch_samples: usize,
}

const V1_FIXTURES: [V1Fixture; 2] = [
    V1Fixture { config: "v1_tiny", rate: 16_000, patch_samples: 1280 },
    V1Fixture { config: "v1_odd", rate: 44_100, patch_samples: 126 },
];

impl V1Fixture {
    fn checkpoint(&self) -> String {
        fixtures().join(self.config).join("checkpoint").display().to_string()
    }

    fn server(&self) -> Server {
        let server = Server::start(ServerOptions::new(self.checkpoint())).unwrap();
        server.await_ready(std::time::Duration::from_secs(60)).unwrap();
        server
    }

    /// A mono clip at the model's rate, 2.5 patches long: left-padded to 3 prompt patches, of
    /// which the last 2 are the decoder's context.
    fn prompt_clip(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join(format!("{}-prompt.wav", self.config));
        write_wav(&path, self.rate, 1, self.patch_samples * 5 / 2);
        path
    }
}

#[test]
fn info_reports_the_v1_architecture_and_the_model_rate() {
    for fixture in &V1_FIXTURES {
        let info = fixture.server().info();
        assert_eq!(info.status, Status::Ready, "{}", fixture.config);
        assert_eq!(info.architecture, Some(Architecture::V1), "{}", fixture.config);
        assert_eq!(info.architecture.unwrap().to_string(), "voxcpm", "the official name");
        assert_eq!(info.sample_rate, Some(fixture.rate), "{}", fixture.config);
    }
}

#[test]
fn generate_gives_whole_patches_at_the_model_rate_reproducibly() {
    for fixture in &V1_FIXTURES {
        let server = fixture.server();
        let name = fixture.config;
        let speech = server.generate("hello world", &options(3, 7)).unwrap();
        assert_eq!((speech.samples.len(), speech.sample_rate), (3 * fixture.patch_samples, fixture.rate), "{name}");
        assert!(speech.samples.iter().all(|x| x.is_finite()), "{name}");
        assert_eq!(server.generate("hello world", &options(3, 7)).unwrap(), speech, "{name}: same seed, same audio");
        assert_ne!(server.generate("hello world", &options(3, 8)).unwrap().samples, speech.samples, "{name}");

        let wav = speech.to_wav();
        let reader = hound::WavReader::new(std::io::Cursor::new(&wav)).unwrap();
        assert_eq!(reader.spec().sample_rate, fixture.rate, "{name}: the WAV says the model's rate");
        assert_eq!(reader.len() as usize, speech.samples.len(), "{name}");
    }
}

#[test]
fn a_stream_gives_one_patch_per_chunk_and_collects_to_the_offline_audio() {
    for fixture in &V1_FIXTURES {
        let server = fixture.server();
        let name = fixture.config;
        let offline = server.generate("hello world", &options(4, 3)).unwrap().samples;
        let mut stream = server.generate_streaming("hello world", &options(4, 3)).unwrap();
        let chunks: Vec<Vec<f32>> = std::iter::from_fn(|| stream.next_chunk().unwrap()).collect();
        assert_eq!(stream.sample_rate(), Some(fixture.rate), "{name}");
        assert_eq!(chunks.len(), 4, "{name}");
        assert!(chunks.iter().all(|c| c.len() == fixture.patch_samples), "{name}: one patch a chunk");
        assert_close(&format!("{name} stream vs offline"), &chunks.concat(), &offline, 1e-5);

        let mut stream = server.generate_streaming("hello world", &options(4, 3)).unwrap();
        let first = stream.next_chunk().unwrap().unwrap();
        let wav = stream.collect().unwrap();
        let reader = hound::WavReader::new(std::io::Cursor::new(&wav)).unwrap();
        assert_eq!(reader.spec().sample_rate, fixture.rate, "{name}: the collected WAV's rate");
        let rest: Vec<f32> = reader.into_samples::<f32>().map(Result::unwrap).collect();
        assert_close(&format!("{name} first chunk"), &first, &offline[..fixture.patch_samples], 1e-5);
        assert_close(&format!("{name} collected rest"), &rest, &offline[fixture.patch_samples..], 1e-5);
    }
}

/// The reference clip is refused naming the option, before the clip is read (a missing file
/// gets the same answer), whole and streamed; the next request is served.
#[test]
fn a_reference_clip_on_v1_is_refused_by_name_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    for fixture in &V1_FIXTURES {
        let server = fixture.server();
        let name = fixture.config;
        let clip = fixture.prompt_clip(dir.path());
        for voice in [clip, dir.path().join("missing.wav")] {
            let cloning = GenerateOptions { audio_prompt: Some(voice), ..options(2, 1) };
            let refused = |message: String| {
                assert!(message.contains("audio_prompt") && message.contains("needs a VoxCPM2 model"), "{message}");
                assert!(message.contains("\"voxcpm\""), "{message}");
            };
            refused(server.generate("hello", &cloning).unwrap_err().to_string());
            let mut stream = server.generate_streaming("hello", &cloning).unwrap();
            refused(stream.next_chunk().unwrap_err().to_string());
        }
        let next = server.generate("hello", &options(2, 1)).unwrap();
        assert_eq!(next.samples.len(), 2 * fixture.patch_samples, "{name}: still serving");
        assert_eq!(server.info().stream_count, 0, "{name}");
    }
}

/// A prompt clip and its transcript through the runtime give what the pipeline makes of the
/// same clip (read and resampled as the runtime reads it) and seed: the generated patches only
/// (v1 cuts the two context patches), and a stream that equals them.
#[test]
fn continuation_through_the_runtime_matches_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    for fixture in &V1_FIXTURES {
        let server = fixture.server();
        let name = fixture.config;
        let clip = fixture.prompt_clip(dir.path());
        let continuing = GenerateOptions {
            prompt_wav_path: Some(clip.clone()),
            prompt_text: Some("今天天气很好。".into()),
            ..options(3, 5)
        };
        let speech = server.generate("hello world", &continuing).unwrap();
        assert_eq!(speech.samples.len(), 3 * fixture.patch_samples, "{name}: the generated patches");
        assert_ne!(speech.samples, server.generate("hello world", &options(3, 5)).unwrap().samples, "{name}");

        let tts = TextToSpeech::load(Path::new(&fixture.checkpoint()), &load_options()).unwrap();
        let request = SpeechRequest {
            text: "hello world".into(),
            prompt: Some(PromptClip {
                audio: load_clip(&clip, fixture.rate).unwrap(), text: "今天天气很好。".into()
            }),
            options: continuing.speech,
            ..Default::default()
        };
        let expected = tts.speak(&request, &mut SeededNoise::new(5), |_| ControlFlow::Continue(())).unwrap();
        assert_close(&format!("{name} runtime vs pipeline"), &speech.samples, &expected, 1e-5);

        let stream = server.generate_streaming("hello world", &continuing).unwrap();
        let streamed = stream.collect_samples().unwrap();
        assert_close(&format!("{name} streamed continuation"), &streamed, &speech.samples, 1e-5);
    }
}
