//! `voxcpm models`: the official releases with what the local cache holds of each, read from
//! the disk alone.

use voxcpm_engine::hub::catalog::{CATALOG, human_bytes};
use voxcpm_engine::hub::{HubLocation, LocalState, local};

pub fn run() {
    let location = HubLocation::from_env();
    println!("{:<12} {:<20} {:>7} {:>10}  {:<36} path", "model", "repository", "rate", "download", "state");
    for model in CATALOG {
        let state = local::state(&location, model.repo);
        let path = match &state {
            LocalState::Installed { snapshot, .. } | LocalState::Damaged { snapshot, .. } => snapshot.clone(),
            LocalState::NotInstalled | LocalState::Partial { .. } => location.repo_dir(model.repo),
        };
        println!(
            "{:<12} {:<20} {:>4} kHz {:>10}  {:<36} {}",
            model.display_name,
            model.repo,
            model.sample_rate_hz as f64 / 1000.0,
            format!("≈{}", human_bytes(model.approx_download_bytes)),
            state.describe(),
            path.display()
        );
    }
    println!("download one with `voxcpm fetch REPOSITORY`; the cache is {}", location.cache_dir.display());
}
