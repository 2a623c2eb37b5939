//! The cpu's bf16 products (`--precision bf16`: weights and matrix-product inputs rounded to
//! bf16, sums in f32) against the official f32 goldens. Natively on CPUs with AVX-512 BF16,
//! emulated elsewhere: the same numbers either way, to float rounding.

mod common;

use common::module_checks::ModuleChecks;
use common::*;
use voxcpm_engine::kernels::Products;
use voxcpm_engine::parity::relative_max_error;

/// bf16 keeps 8 significant bits (a rounding error of up to 2e-3, eight times f16's), and the
/// LMs' layers and the solver's steps compound it: the fixtures measured up to 1.1e-2 for a
/// module (the 5-step CFM solve) and 2.1e-2 for a take's first patch. A wrong product (a
/// dropped depth, a misplaced column) is off by the size of the values themselves.
const BF16_TOLERANCE: f32 = 5e-2;
/// What the parts kept in f32 must still reach (as in `module_parity.rs`).
const F32_TOLERANCE: f32 = 1e-5;

#[test]
fn every_module_matches_within_5e_2() {
    ModuleChecks { device: device(), products: Products::Bf16, tolerance: BF16_TOLERANCE }.all();
}

/// The mode must really round (the base LM differs from its f32-products self), and the
/// quantiser and the AudioVAE, which the official bf16 release also keeps in f32, must not.
#[test]
fn the_lm_computes_in_bf16_and_the_quantiser_and_vae_in_f32() {
    let g = goldens("tiny");
    let prefill = |products| -> Vec<f32> {
        let model = load_model_with("tiny", &device(), products);
        let lm = model.base_lm();
        let mut cache = lm.new_cache(model.config().max_length);
        values(lm.forward_cached(tensor(&g, "base_lm.prefill.input"), &mut cache).unwrap())
    };
    let difference = relative_max_error(&prefill(Products::Bf16), &prefill(Products::F32));
    assert!(difference > 1e-5, "bf16 products left the base LM unchanged ({difference:e})");

    let checks = ModuleChecks { device: device(), products: Products::Bf16, tolerance: F32_TOLERANCE };
    checks.fsq();
    checks.vae_encode();
    checks.vae_decode();
}

/// A whole take is autoregressive, so rounding grows along it (as in the official bf16
/// release): the first patch, made before any feedback, must match within 5e-2, and the take
/// must keep its length and stay finite.
#[test]
fn a_generation_starts_within_5e_2_and_keeps_its_length() {
    let (checkpoint, path) = case_files("case_full").into_iter().next().expect("a full case");
    let (case, out, model) = run_zero_shot_case(&checkpoint, &path, &device(), Products::Bf16);
    let (latents, _) = case.latents.as_ref().expect("case has latents");
    assert!(out.audio.iter().all(|x| x.is_finite()), "bf16 audio has non-finite samples");
    let (shape, patch) = (out.latent_shape, model.config().patch_size);
    let (made, expected) = (first_patch(&out.latents, shape, patch), first_patch(latents, shape, patch));
    assert_close("bf16 first patch", &made, &expected, BF16_TOLERANCE);
}
