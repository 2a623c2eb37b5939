//! The flow-matching sampler around LocDiT (§5.6): Euler steps from noise (t = 1) to data
//! (t = 0) on a sway-shifted schedule, with classifier-free guidance by CFG-Zero*.

use burn::tensor::{FloatDType, Tensor};

use super::loc_dit::LocDit;

/// Sampling settings of one patch.
#[derive(Debug, Clone, Copy)]
pub struct CfmSettings {
    pub timesteps: usize,
    pub cfg_value: f32,
}

/// The reference's schedule: `linspace(1, 0, n+1)` shifted by `t + cos(πt/2) − 1 + t`, in f32.
pub fn time_schedule(timesteps: usize) -> Vec<f32> {
    let steps = timesteps + 1;
    let step = -1.0f32 / timesteps as f32;
    // torch.linspace fills the first half forwards from the start and the rest backwards from
    // the end; matching that keeps the last bits identical.
    let half = steps / 2;
    (0..steps)
        .map(|i| if i < half { 1.0 + step * i as f32 } else { 0.0 - step * (steps - 1 - i) as f32 })
        .map(|t| t + ((std::f32::consts::PI / 2.0 * t).cos() - 1.0 + t))
        .collect()
}

/// Steps whose velocity CFG-Zero* takes as zero: `max(1, int((n+1)·0.04))`.
fn zero_init_steps(timesteps: usize) -> usize {
    (((timesteps + 1) as f64 * 0.04) as usize).max(1)
}

/// Solves one patch: `z` `[1, D, P]` noise, `mu` `[1, H_dit]` (v1) or `[1, 2·H_dit]` (v2), `cond` `[1, D, P]`.
///
/// On the CPU kernels it runs on a thread of rayon's pool (the caller waits): each of the
/// patch's parallel products then starts on the thread that asks for it, instead of the caller
/// handing every one to the pool and sleeping until it is done, two thread hand-offs a product.
/// Elsewhere it stays on the caller's thread (burn's GPU backends queue work per thread).
pub fn solve(dit: &LocDit, z: Tensor<3>, mu: Tensor<2>, cond: Tensor<3>, settings: CfmSettings) -> Tensor<3> {
    if dit.uses_cpu_kernels() {
        rayon::scope(|_| solve_here(dit, z, mu, cond, settings))
    } else {
        solve_here(dit, z, mu, cond, settings)
    }
}

fn solve_here(dit: &LocDit, z: Tensor<3>, mu: Tensor<2>, cond: Tensor<3>, settings: CfmSettings) -> Tensor<3> {
    let t_span = time_schedule(settings.timesteps);
    let skip = zero_init_steps(settings.timesteps);
    // The unconditional row gets zero mu and the same cond (§11.2).
    let mu_pair = Tensor::cat(vec![mu.clone(), mu.zeros_like()], 0);
    let cond_pair = Tensor::cat(vec![cond.clone(), cond], 0);
    let dtype: FloatDType = z.dtype().into();
    let mut x = z;
    let mut t = t_span[0];
    let mut dt = t_span[0] - t_span[1];
    for step in 1..t_span.len() {
        if step > skip {
            let x_pair = Tensor::cat(vec![x.clone(), x.clone()], 0);
            let velocity = dit.forward(x_pair, mu_pair.clone(), &[t, t], cond_pair.clone(), &[0.0, 0.0]);
            let conditional = velocity.clone().slice_dim(0, 0..1);
            let unconditional = velocity.slice_dim(0, 1..2);
            // The projection's sums run in f32 (in f16, 1e-8 would round to zero).
            let (c, u) = (conditional.clone().cast(FloatDType::F32), unconditional.clone().cast(FloatDType::F32));
            let st_star = ((c * u.clone()).sum() / (u.square().sum() + 1e-8)).cast(dtype).reshape([1, 1, 1]);
            let scaled_u = unconditional * st_star;
            let v = scaled_u.clone() + (conditional - scaled_u) * settings.cfg_value as f64;
            x = x - v * dt as f64;
        }
        t -= dt;
        if step < t_span.len() - 1 {
            dt = t - t_span[step + 1];
        }
    }
    x
}
