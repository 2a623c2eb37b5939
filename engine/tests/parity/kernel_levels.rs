//! Every CPU kernel level this machine runs (see `voxcpm_engine::kernels::Level`), not just the
//! one its CPU picks: the module parity checks, in f32 and in bf16 products, a whole take and
//! the runtime's report. The level is chosen once per process and tests share their process, so
//! each test here runs itself again, alone, in a child process with `VOXCPM_KERNEL` set (and
//! `KERNEL_LEVELS_CHILD`, which makes it check instead of starting a child).
//! bf16 products are emulated at every level below `avx512-bf16`, so the `avx512` run is the
//! emulated bf16 path forced on a CPU that has the native one.
//!
//! A level the CPU lacks is skipped, saying so. Under CI (`CI` set, and not empty, "0" or
//! "false") a skip fails unless the operating system confirms the lack: on x86-64 Linux,
//! /proc/cpuinfo must miss one of the level's flags too (a skip it contradicts is a detection
//! bug), and where there is no /proc/cpuinfo to ask, a skip fails. Other architectures have no
//! x86 kernels at all, so their skips stand.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::module_checks::ModuleChecks;
use crate::common::*;
use voxcpm_engine::kernels::{self, LEVEL_VARIABLE, Level, LevelError, Products};
use voxcpm_engine::runtime::{Precision, Server, ServerOptions};
use voxcpm_engine::testkit::parity::relative_max_error;

/// Set in a child: the test runs its checks at the level in `VOXCPM_KERNEL` instead of
/// starting a child.
const CHILD: &str = "KERNEL_LEVELS_CHILD";
/// Where a child of [`bf16_products_are_the_same_numbers_at_every_level`] writes its output.
const PREFILL_FILE: &str = "KERNEL_LEVELS_PREFILL";
/// Summation orders differ by float rounding (2.5e-7 measured between the native dot products,
/// which add pairs, and the emulation); bf16 products that skipped the rounding of their inputs
/// differ from rounded ones by 4e-3.
const SAME_NUMBERS: f32 = 1e-5;

#[test]
fn portable_kernels_match_the_goldens() {
    checks_at(Level::Portable, "portable_kernels_match_the_goldens");
}

#[test]
fn avx2_kernels_match_the_goldens() {
    checks_at(Level::Avx2, "avx2_kernels_match_the_goldens");
}

#[test]
fn avx512_kernels_with_emulated_bf16_match_the_goldens() {
    checks_at(Level::Avx512, "avx512_kernels_with_emulated_bf16_match_the_goldens");
}

#[test]
fn avx512_bf16_kernels_match_the_goldens() {
    checks_at(Level::Avx512Bf16, "avx512_bf16_kernels_match_the_goldens");
}

/// bf16 products are the same numbers at every level, to float rounding: emulated (inputs
/// rounded, then the level's f32 kernel) or native. The goldens alone cannot tell, since f32
/// products also fall within the bf16 tolerance: an emulation that forgot to round would pass.
#[test]
fn bf16_products_are_the_same_numbers_at_every_level() {
    if in_child() {
        let prefill = base_lm_prefill("tiny", &fixtures(), Products::Bf16);
        let path = std::env::var_os(PREFILL_FILE).expect("the parent names the output file");
        std::fs::write(path, prefill.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let prefills: Vec<(Level, Vec<f32>)> = Level::supported()
        .into_iter()
        .map(|level| {
            let path = dir.path().join(level.name());
            run_in_child("bf16_products_are_the_same_numbers_at_every_level", level.name(), &[(PREFILL_FILE, &path)]);
            let bytes = std::fs::read(&path).expect("the child wrote its prefill");
            (level, bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
        })
        .collect();
    let (best, reference) = prefills.last().expect("every CPU runs the portable level");
    for (level, prefill) in &prefills {
        let difference = relative_max_error(prefill, reference);
        println!("bf16 products at {level} against {best}: relative max difference {difference:e}");
        assert!(difference <= SAME_NUMBERS, "bf16 products at {level} differ from {best}'s by {difference:e}");
    }
}

/// A name that is no level fails a cpu model's load with the reason (and the runtime reports
/// it), on any CPU; a level the CPU lacks takes the same path (see `kernels::level`'s tests).
#[test]
fn an_unusable_level_fails_the_load_saying_why() {
    if !in_child() {
        run_in_child("an_unusable_level_fails_the_load_saying_why", "avx-512", &[]);
        return;
    }
    assert_eq!(kernels::selected_level(), Err(LevelError::Unknown("avx-512".into())));
    let server = Server::start(ServerOptions::new(tiny_checkpoint())).expect("a cpu server starts");
    let error = server.await_ready(Duration::from_secs(120)).expect_err("the load fails").to_string();
    assert!(error.contains("VOXCPM_KERNEL=\"avx-512\" is not a kernel level"), "{error}");
    assert!(matches!(server.info().cpu_kernels, Err(LevelError::Unknown(_))));
}

/// In a child at `level`: the checks; in the parent: `test` (the caller) in a child at `level`,
/// or a skip where the CPU lacks it.
fn checks_at(level: Level, test: &str) {
    if in_child() {
        assert_eq!(kernels::level(), level, "the level in use is the one asked for");
        modules_match();
        a_take_matches();
        the_runtime_reports(level);
        return;
    }
    if level.is_supported() {
        run_in_child(test, level.name(), &[]);
        return;
    }
    let supported: Vec<&str> = Level::supported().into_iter().map(Level::name).collect();
    let skip = format!(
        "skipped the {level} kernels: they need {}, which this CPU lacks (it runs {})",
        level.features(),
        supported.join(", ")
    );
    println!("{skip}");
    if under_ci()
        && let Err(why) = lack_confirmed_by_the_os(level)
    {
        panic!("{skip}, and under CI a skip must be confirmed by the OS: {why}");
    }
}

/// Every module in f32 products and in bf16 ones.
fn modules_match() {
    let on_cpu = |products, tolerance| ModuleChecks { device: device(), products, tolerance, checkpoints: fixtures() };
    on_cpu(Products::F32, MODULE_TOLERANCE).all();
    on_cpu(Products::Bf16, BF16_TOLERANCE).all();
}

/// The tiny config's full zero-shot take against its golden in f32 products; in bf16 products
/// its first patch (made before any output feeds back, see `cpu_bf16_parity.rs`), with the
/// take's length kept.
fn a_take_matches() {
    let (checkpoint, path) = (fixtures().join("tiny/checkpoint"), fixtures().join("tiny/case_full.safetensors"));
    let (case, out, _) = run_zero_shot_case(&checkpoint, &path, &device(), Products::F32);
    let (latents, _) = case.latents.as_ref().expect("case has latents");
    assert_close("f32 latents", &out.latents, latents, LATENT_TOLERANCE);
    assert_close("f32 audio", &out.audio, case.audio.as_ref().expect("case has audio"), AUDIO_TOLERANCE);

    let (_, out, model) = run_zero_shot_case(&checkpoint, &path, &device(), Products::Bf16);
    let (shape, patch) = (out.latent_shape, model.config().patch_size);
    let (made, expected) = (first_patch(&out.latents, shape, patch), first_patch(latents, shape, patch));
    assert_close("bf16 first patch", &made, &expected, BF16_TOLERANCE);
    assert!(out.audio.iter().all(|x| x.is_finite()), "bf16 audio has non-finite samples");
}

/// The runtime's info names the level, and a bf16 server says whether its products are native.
fn the_runtime_reports(level: Level) {
    let server = Server::start(ServerOptions { precision: Precision::Bf16, ..ServerOptions::new(tiny_checkpoint()) })
        .expect("a cpu server starts");
    server.await_ready(Duration::from_secs(120)).expect("the tiny model loads");
    let info = server.info();
    assert_eq!(info.cpu_kernels, Ok(level));
    match info.device_note {
        None => assert!(level.native_bf16(), "{level} emulates bf16 products without saying so"),
        Some(note) => assert!(!level.native_bf16() && note.contains(&format!("the {level} kernels")), "{note}"),
    }
}

fn tiny_checkpoint() -> String {
    fixtures().join("tiny/checkpoint").display().to_string()
}

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs this binary's `test` alone in a child with `VOXCPM_KERNEL=level` and `env`, failing
/// with the child's output unless the test ran and passed.
fn run_in_child(test: &str, level: &str, env: &[(&str, &Path)]) {
    // Test names are paths inside the test binary (`kernel_levels::...`), without its crate.
    let path = module_path!().split_once("::").map_or(String::new(), |(_, module)| format!("{module}::"));
    let test = &format!("{path}{test}");
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", test])
        .env(CHILD, "1")
        .env(LEVEL_VARIABLE, level)
        .envs(env.iter().copied())
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!(
        "{test} with {LEVEL_VARIABLE}={level}: {}\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(stdout.contains("test result: ok. 1 passed"), "the child did not run {test}: {report}");
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// `Ok` when the operating system agrees that the CPU lacks `level`, else why it does not.
#[cfg(target_arch = "x86_64")]
fn lack_confirmed_by_the_os(level: Level) -> Result<(), String> {
    let needed: &[&str] = match level {
        Level::Portable => &[],
        Level::Avx2 => &["avx2", "fma"],
        Level::Avx512 => &["avx512f"],
        Level::Avx512Bf16 => &["avx512f", "avx512_bf16"],
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo")
        .map_err(|e| format!("there is no /proc/cpuinfo to confirm it ({e})"))?;
    let flags = cpuinfo.lines().find(|line| line.starts_with("flags")).ok_or("/proc/cpuinfo lists no flags")?;
    let flags: Vec<&str> = flags.split_whitespace().collect();
    if needed.iter().all(|flag| flags.contains(flag)) {
        return Err(format!("/proc/cpuinfo lists {needed:?}, so the engine's CPU detection is wrong"));
    }
    Ok(())
}

/// Other architectures have no x86 kernels: the lack is real.
#[cfg(not(target_arch = "x86_64"))]
fn lack_confirmed_by_the_os(_level: Level) -> Result<(), String> {
    Ok(())
}
