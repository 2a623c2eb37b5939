//! Continuous batching against the goldens: cases generated together in one batch (joining at
//! different steps, of different prefix lengths, one stopping early, one dropped mid-way) must
//! each match their golden at the usual tolerances and their run alone bit for bit.

use std::path::{Path, PathBuf};

use crate::common::*;
use voxcpm_engine::kernels::Products;
use voxcpm_engine::model::{
    CfmSettings, DEFAULT_RATIO_THRESHOLD, Generation, GenerationSettings, Sequence, VoxCpm, patch_cap,
};
use voxcpm_engine::noise::{NoiseSource, ReplayNoise, SeededNoise};
use voxcpm_engine::pipeline::{Delivery, TextToSpeech, Utterance};
use voxcpm_engine::testkit::parity::{ParityCase, PipelineCase, TensorFile, ZeroShotCase, max_abs_diff};

/// One request of a test batch and what it has produced so far.
struct Job<S> {
    /// The batch step before which it joins (after its prefill).
    joins_at: usize,
    /// Dropped by its caller after this many steps.
    dropped_after: Option<usize>,
    state: Option<S>,
    noise: Box<dyn NoiseSource>,
    steps: usize,
    output: Vec<f32>,
    finished: bool,
}

impl<S> Job<S> {
    fn new(noise: Box<dyn NoiseSource>, joins_at: usize) -> Self {
        Job { joins_at, dropped_after: None, state: None, noise, steps: 0, output: Vec::new(), finished: false }
    }
}

/// What a batch is made of: the model's generations, or the pipeline's utterances.
trait Batched {
    type State;
    type Request;
    /// Prefill; the audio (if any) to deliver before the first patch.
    fn start(&self, request: &Self::Request) -> (Self::State, Vec<f32>);
    /// One step of the whole batch: each member's new output and whether it finished.
    fn step(&self, states: &mut [&mut Self::State], noise: &mut [&mut dyn NoiseSource]) -> Vec<(Vec<f32>, bool)>;
}

/// Runs `jobs` as a continuous batch until every one has finished or been dropped; returns how
/// many members each step had.
fn run<B: Batched>(batched: &B, requests: &[B::Request], jobs: &mut [Job<B::State>]) -> Vec<usize> {
    let mut sizes = Vec::new();
    for step in 0.. {
        for (job, request) in jobs.iter_mut().zip(requests) {
            if job.state.is_none() && !job.finished && job.joins_at <= step {
                let (state, first) = batched.start(request);
                job.output.extend(first);
                job.state = Some(state);
            }
        }
        let mut members: Vec<&mut Job<B::State>> = jobs.iter_mut().filter(|j| j.state.is_some()).collect();
        if members.is_empty() {
            if jobs.iter().all(|j| j.finished) {
                break;
            }
            continue;
        }
        sizes.push(members.len());
        let mut states = Vec::new();
        let mut noises: Vec<&mut dyn NoiseSource> = Vec::new();
        for job in members.iter_mut() {
            states.push(job.state.as_mut().unwrap());
            noises.push(job.noise.as_mut());
        }
        let outputs = batched.step(&mut states, &mut noises);
        for (job, (output, done)) in members.into_iter().zip(outputs) {
            job.output.extend(output);
            job.steps += 1;
            if done || job.dropped_after == Some(job.steps) {
                job.state = None;
                job.finished = true;
            }
        }
    }
    sizes
}

/// A zero-shot case as the model's loop sees it.
struct ZeroShot {
    sequence: Sequence,
    settings: GenerationSettings,
}

impl ZeroShot {
    fn of(case: &ZeroShotCase, model: &VoxCpm) -> Self {
        let patch_len = model.config().patch_size * model.config().feat_dim;
        ZeroShot {
            sequence: Sequence::zero_shot(case.text_ids.clone(), patch_len),
            settings: GenerationSettings {
                min_len: case.min_len,
                max_len: patch_cap(case.text_ids.len() - 1, case.max_len, DEFAULT_RATIO_THRESHOLD),
                cfm: CfmSettings { timesteps: case.timesteps, cfg_value: case.cfg_value },
            },
        }
    }
}

impl Batched for VoxCpm {
    type State = Generation;
    type Request = ZeroShot;

    fn start(&self, request: &ZeroShot) -> (Generation, Vec<f32>) {
        (VoxCpm::start(self, &request.sequence, request.settings).unwrap(), Vec::new())
    }

    fn step(&self, states: &mut [&mut Generation], noise: &mut [&mut dyn NoiseSource]) -> Vec<(Vec<f32>, bool)> {
        let results = VoxCpm::step(self, states, noise).unwrap();
        results.into_iter().map(|r| r.unwrap()).map(|patch| (patch.values, patch.last)).collect()
    }
}

/// A pipeline case, delivered whole or as a stream.
struct Spoken {
    case: PipelineCase,
    delivery: Delivery,
}

impl Batched for TextToSpeech {
    type State = Utterance;
    type Request = Spoken;

    fn start(&self, request: &Spoken) -> (Utterance, Vec<f32>) {
        let (utterance, warm_up) = self.begin(&request.case.request, request.delivery).unwrap();
        (utterance, warm_up.unwrap_or_default())
    }

    fn step(&self, states: &mut [&mut Utterance], noise: &mut [&mut dyn NoiseSource]) -> Vec<(Vec<f32>, bool)> {
        let results = TextToSpeech::step(self, states, noise).unwrap();
        results.into_iter().map(|r| r.unwrap()).map(|step| (step.audio.unwrap_or_default(), step.done)).collect()
    }
}

fn replay(noise: &[f32], model: &VoxCpm) -> Box<dyn NoiseSource> {
    Box::new(ReplayNoise::new(noise.to_vec(), model.config().patch_size * model.config().feat_dim))
}

/// Bit for bit: NaN-aware (a NaN on one side only is an infinite difference).
fn assert_identical(what: &str, batched: &[f32], alone: &[f32]) {
    let diff = max_abs_diff(batched, alone);
    assert!(
        diff == 0.0,
        "{what}: batched differs from alone by {diff:e} (lengths {} / {})",
        batched.len(),
        alone.len()
    );
}

/// The zero-shot cases of one fixture config, in name order.
fn zero_shot_cases(config: &str) -> Vec<(PathBuf, PathBuf)> {
    case_files("case_").into_iter().filter(|(checkpoint, _)| checkpoint.parent().unwrap().ends_with(config)).collect()
}

fn check_zero_shot_batch(config: &str, products: Products) {
    let cases = zero_shot_cases(config);
    assert!(cases.len() >= 2, "{config}: expected two zero-shot cases, found {}", cases.len());
    let model = load_model_from(&cases[0].0, &device(), products);
    let read = |path: &Path| ZeroShotCase::read(path).unwrap();
    let mut requests = Vec::new();
    let mut jobs = Vec::new();
    // Every case from the first step, then every case again joining at step 2.
    for joins_at in [0, 2] {
        for (_, path) in &cases {
            let case = read(path);
            requests.push(ZeroShot::of(&case, &model));
            jobs.push(Job::new(replay(&case.noise, &model), joins_at));
        }
    }
    // A shorter prefix with its own seed that never stops by itself, dropped after 2 patches.
    let first = read(&cases[0].1);
    let short = first.text_ids[first.text_ids.len() / 2..].to_vec();
    let patch_len = model.config().patch_size * model.config().feat_dim;
    requests.push(ZeroShot {
        sequence: Sequence::zero_shot(short, patch_len),
        settings: GenerationSettings { min_len: 50, max_len: 50, cfm: CfmSettings { timesteps: 3, cfg_value: 1.5 } },
    });
    let mut dropped = Job::new(Box::new(SeededNoise::new(9)), 1);
    dropped.dropped_after = Some(2);
    jobs.push(dropped);

    let sizes = run(&model, &requests, &mut jobs);
    assert!(sizes.iter().any(|&n| n >= 4), "{config}: the batch never held four requests: {sizes:?}");
    assert_eq!(jobs.last().unwrap().steps, 2, "the dropped request stepped after it was dropped");
    for (job, (_, path)) in jobs.iter().zip(cases.iter().chain(&cases)) {
        let name = format!("{} ({products:?}, joined at step {})", path.display(), job.joins_at);
        let case = read(path);
        let alone = case.run(&model, path).unwrap();
        let latents = values(model.patches_to_latents(&job.output));
        let audio = values(model.audio_vae().decode(model.patches_to_latents(&job.output)));
        assert_identical(&format!("{name} latents"), &latents, &alone.latents);
        assert_identical(&format!("{name} audio"), &audio, &alone.audio);
        // bf16 against the f32 goldens is checked in cpu_bf16_parity; here it is batched = alone.
        if products == Products::F32 {
            let (golden, _) = case.latents.as_ref().unwrap();
            assert_close(&format!("{name} latents vs golden"), &latents, golden, LATENT_TOLERANCE);
            assert_close(&format!("{name} audio vs golden"), &audio, case.audio.as_ref().unwrap(), AUDIO_TOLERANCE);
        }
    }
}

#[test]
fn zero_shot_cases_batched_match_their_goldens_and_their_runs_alone() {
    for config in CONFIGS {
        check_zero_shot_batch(config, Products::F32);
    }
}

#[test]
fn bf16_products_batched_equal_their_runs_alone() {
    check_zero_shot_batch("tiny", Products::Bf16);
}

#[test]
fn pipeline_cases_batched_match_their_goldens_and_their_runs_alone() {
    let cases: Vec<(PathBuf, PathBuf)> =
        case_files("pipeline_").into_iter().filter(|(c, _)| c.parent().unwrap().ends_with("tiny")).collect();
    assert!(cases.len() >= 4, "expected the tiny pipeline cases, found {}", cases.len());
    let tts = TextToSpeech::load(&cases[0].0, &load_options()).unwrap();
    let mut requests = Vec::new();
    let mut jobs = Vec::new();
    let mut expected = Vec::new();
    for (i, (_, path)) in cases.iter().enumerate() {
        let ParityCase::Pipeline(case) = ParityCase::read(path).unwrap() else { panic!("a pipeline case") };
        let file = TensorFile::read(path).unwrap();
        let name = path.display().to_string();
        let alone = case.run(&tts, path).unwrap().audio;
        expected.push((format!("{name} whole"), case.audio.clone().unwrap(), alone));
        jobs.push(Job::new(replay(&case.noise, tts.model()), i % 3));
        let noise = case.noise.clone();
        requests.push(Spoken { case: case.clone(), delivery: Delivery::Whole });
        if file.contains("audio_stream") {
            let mut alone = Vec::new();
            let mut replayed =
                ReplayNoise::new(noise.clone(), tts.model().config().patch_size * tts.model().config().feat_dim);
            tts.speak_streaming(&case.request, &mut replayed, |chunk| {
                alone.extend_from_slice(chunk);
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
            expected.push((format!("{name} stream"), file.f32("audio_stream").unwrap(), alone));
            jobs.push(Job::new(replay(&noise, tts.model()), 1));
            requests.push(Spoken { case, delivery: Delivery::Streaming });
        }
    }
    assert!(requests.iter().any(|r| r.delivery == Delivery::Streaming), "a streaming case is committed");
    let sizes = run(&tts, &requests, &mut jobs);
    assert!(sizes.iter().any(|&n| n >= 4), "the batch never held four requests: {sizes:?}");
    for (job, (name, golden, alone)) in jobs.iter().zip(expected) {
        assert_identical(&name, &job.output, &alone);
        assert_close(&format!("{name} vs golden"), &job.output, &golden, AUDIO_TOLERANCE);
    }
}
