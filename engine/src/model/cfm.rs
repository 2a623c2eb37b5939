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
pub fn solve(dit: &LocDit, z: Tensor<3>, mu: Tensor<2>, cond: Tensor<3>, settings: CfmSettings) -> Tensor<3> {
    solve_batch(dit, z, mu, cond, &[settings])
}

/// Solves one patch for each of `B` requests at once: row `r` of `z`, `mu` and `cond` (shaped
/// as for [`solve`], with `B` rows) is request `r`, solved with `settings[r]`. Each Euler step
/// runs LocDiT once over both guidance branches of every request still stepping (requests may
/// differ in their timesteps), so its products take `2·B` rows at a time; the CFG-Zero*
/// projection and the update stay per request. Row `r` of the answer is bit for bit what
/// [`solve`] gives request `r` alone.
///
/// On the CPU kernels it runs on a thread of rayon's pool (the caller waits): each of the
/// patch's parallel products then starts on the thread that asks for it, instead of the caller
/// handing every one to the pool and sleeping until it is done, two thread hand-offs a product.
/// Elsewhere it stays on the caller's thread (burn's GPU backends queue work per thread).
pub fn solve_batch(dit: &LocDit, z: Tensor<3>, mu: Tensor<2>, cond: Tensor<3>, settings: &[CfmSettings]) -> Tensor<3> {
    if dit.uses_cpu_kernels() {
        rayon::scope(|_| solve_here(dit, z, mu, cond, settings))
    } else {
        solve_here(dit, z, mu, cond, settings)
    }
}

/// One request's Euler integration.
struct Track {
    schedule: Vec<f32>,
    skip: usize,
    cfg_value: f32,
    mu: Tensor<2>,
    cond: Tensor<3>,
    x: Tensor<3>,
    t: f32,
    dt: f32,
}

impl Track {
    /// Whether this request takes a LocDiT evaluation at `step`.
    fn evaluates(&self, step: usize) -> bool {
        step < self.schedule.len() && step > self.skip
    }
}

fn solve_here(dit: &LocDit, z: Tensor<3>, mu: Tensor<2>, cond: Tensor<3>, settings: &[CfmSettings]) -> Tensor<3> {
    let row = |x: &Tensor<3>, r: usize| x.clone().slice_dim(0, r..r + 1);
    let mut tracks: Vec<Track> = settings
        .iter()
        .enumerate()
        .map(|(r, s)| {
            let schedule = time_schedule(s.timesteps);
            let (t, dt) = (schedule[0], schedule[0] - schedule[1]);
            Track {
                skip: zero_init_steps(s.timesteps),
                cfg_value: s.cfg_value,
                mu: mu.clone().slice_dim(0, r..r + 1),
                cond: row(&cond, r),
                x: row(&z, r),
                schedule,
                t,
                dt,
            }
        })
        .collect();
    if tracks.is_empty() {
        return z;
    }
    let dtype: FloatDType = z.dtype().into();
    let steps = tracks.iter().map(|track| track.schedule.len()).max().unwrap_or(0);
    for step in 1..steps {
        let active: Vec<usize> = (0..tracks.len()).filter(|&r| tracks[r].evaluates(step)).collect();
        if !active.is_empty() {
            // Conditional rows of every active request, then their unconditional rows, which get
            // zero mu and the same cond (§11.2).
            let n = active.len();
            let pick = |f: &dyn Fn(&Track) -> Tensor<3>| active.iter().map(|&r| f(&tracks[r])).collect::<Vec<_>>();
            let x = pick(&|track| track.x.clone());
            let conds = pick(&|track| track.cond.clone());
            let mus: Vec<Tensor<2>> = active.iter().map(|&r| tracks[r].mu.clone()).collect();
            let zeros: Vec<Tensor<2>> = mus.iter().map(|mu| mu.zeros_like()).collect();
            let times: Vec<f32> = active.iter().chain(&active).map(|&r| tracks[r].t).collect();
            let velocity = dit.forward(
                Tensor::cat([x.clone(), x].concat(), 0),
                Tensor::cat([mus, zeros].concat(), 0),
                &times,
                Tensor::cat([conds.clone(), conds].concat(), 0),
                &vec![0.0; 2 * n],
            );
            for (i, &r) in active.iter().enumerate() {
                let track = &mut tracks[r];
                let conditional = row(&velocity, i);
                let unconditional = row(&velocity, n + i);
                // The projection's sums run in f32 (in f16, 1e-8 would round to zero).
                let (c, u) = (conditional.clone().cast(FloatDType::F32), unconditional.clone().cast(FloatDType::F32));
                let st_star = ((c * u.clone()).sum() / (u.square().sum() + 1e-8)).cast(dtype).reshape([1, 1, 1]);
                let scaled_u = unconditional * st_star;
                let v = scaled_u.clone() + (conditional - scaled_u) * track.cfg_value as f64;
                track.x = track.x.clone() - v * track.dt as f64;
            }
        }
        for track in tracks.iter_mut().filter(|track| step < track.schedule.len()) {
            track.t -= track.dt;
            if step < track.schedule.len() - 1 {
                track.dt = track.t - track.schedule[step + 1];
            }
        }
    }
    Tensor::cat(tracks.into_iter().map(|track| track.x).collect(), 0)
}
