//! The VoxCPM releases a user can pick from a list (the CLI's `voxcpm models`, the plugin's
//! Models section). Any other repository in the same layout still works by its id.

/// One official release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogModel {
    pub display_name: &'static str,
    pub repo: &'static str,
    /// The rate of the audio it produces.
    pub sample_rate_hz: u32,
    /// What a full download takes (weights, AudioVAE, tokenizer), to show before starting; the
    /// real total comes from the Hub's file list.
    pub approx_download_bytes: u64,
}

/// Newest first. Sizes, from shared/docs:
/// - VoxCPM2: `model.safetensors` 4,580,080,592 B + `audiovae.pth` ≈377 MB + `tokenizer.json`
///   3,676,772 B (voxcpm2-architecture.md §7.1).
/// - VoxCPM1.5: estimated from parameter counts (voxcpm2-architecture.md §7.4,
///   voxcpm-family.md §1): 801.7 M bf16 weights ≈1,603 MB + an 86.5 M-parameter f32 VAE ≈346 MB
///   + a tokenizer of the same vocabulary ≈4 MB.
/// - VoxCPM-0.5B: 652.3 M bf16 weights ≈1,305 MB + `audiovae.pth` 301,494,192 B
///   (voxcpm-family.md §1) + tokenizer ≈4 MB.
pub const CATALOG: [CatalogModel; 3] = [
    CatalogModel {
        display_name: "VoxCPM2",
        repo: "openbmb/VoxCPM2",
        sample_rate_hz: 48_000,
        approx_download_bytes: 4_960_000_000,
    },
    CatalogModel {
        display_name: "VoxCPM1.5",
        repo: "openbmb/VoxCPM1.5",
        sample_rate_hz: 44_100,
        approx_download_bytes: 1_953_000_000,
    },
    CatalogModel {
        display_name: "VoxCPM-0.5B",
        repo: "openbmb/VoxCPM-0.5B",
        sample_rate_hz: 16_000,
        approx_download_bytes: 1_610_000_000,
    },
];

/// The catalog entry for `repo`, if it is an official release.
pub fn find(repo: &str) -> Option<&'static CatalogModel> {
    CATALOG.iter().find(|model| model.repo == repo)
}

/// `bytes` for people: "4.96 GB", "377 MB", "12 kB" (decimal units, as the Hub shows sizes).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    let value = bytes as f64;
    UNITS
        .iter()
        .find(|(_, scale)| value >= *scale)
        .map(|(unit, scale)| format!("{:.*} {unit}", if value >= scale * 100.0 { 0 } else { 2 }, value / scale))
        .unwrap_or_else(|| format!("{bytes} B"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_names_the_default_release_first_and_every_repo_is_an_id() {
        assert_eq!(CATALOG[0].repo, super::super::DEFAULT_REPO);
        for model in CATALOG {
            assert!(super::super::is_repo_id(model.repo), "{}", model.repo);
            assert_eq!(find(model.repo), Some(&model));
        }
        assert_eq!(find("someone/else"), None);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(4_960_000_000), "4.96 GB");
        assert_eq!(human_bytes(377_000_000), "377 MB");
        assert_eq!(human_bytes(12_345), "12.35 kB");
        assert_eq!(human_bytes(999), "999 B");
    }
}
