//! Each part of the model against the official implementation, on the fixture checkpoints.

use crate::common::module_checks::ModuleChecks;
use crate::common::{MODULE_TOLERANCE, device, fixtures};
use voxcpm_engine::kernels::Products;

fn on_cpu() -> ModuleChecks {
    ModuleChecks { device: device(), products: Products::F32, tolerance: MODULE_TOLERANCE, checkpoints: fixtures() }
}

#[test]
fn base_lm_prefill_and_steps_match() {
    on_cpu().lm_stack("base_lm");
}

#[test]
fn residual_lm_prefill_and_steps_match() {
    on_cpu().lm_stack("residual_lm");
}

#[test]
fn loc_enc_matches() {
    on_cpu().loc_enc();
}

#[test]
fn loc_dit_call_matches() {
    on_cpu().loc_dit();
}

#[test]
fn cfm_solve_matches() {
    on_cpu().cfm_solve();
}

#[test]
fn fsq_matches() {
    on_cpu().fsq();
}

#[test]
fn stop_logits_match() {
    on_cpu().stop_logits();
}

#[test]
fn vae_encode_matches() {
    on_cpu().vae_encode();
}

#[test]
fn vae_decode_matches() {
    on_cpu().vae_decode();
}

#[test]
fn streaming_vae_decode_matches_the_official_stream_and_offline_decode() {
    on_cpu().vae_stream();
}
