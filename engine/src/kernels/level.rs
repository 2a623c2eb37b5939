//! Which micro-kernels the process runs: the best this CPU has, or the level named by
//! `VOXCPM_KERNEL` (read once), so that tests and bug reports can run every path on one
//! machine.
//!
//! The levels form a chain, each using the instructions of the ones below it plus its own:
//! `portable` (plain Rust), `avx2` (AVX2 + FMA), `avx512` (AVX-512F) and `avx512-bf16`
//! (AVX-512F with AVX-512 BF16 dot products). bf16 products run natively only at the top level;
//! below it they are emulated (inputs rounded to bf16, then the level's f32 kernel), so
//! `VOXCPM_KERNEL=avx512` forces the emulated bf16 path on a CPU that has the native one.
//!
//! Asking for a level the CPU cannot run is an error, not a fallback: the variable exists to
//! test one path, and a silent fallback would let a run on a weaker machine pass while testing
//! another path.

use std::fmt;
use std::sync::OnceLock;

/// The environment variable that selects a level by its name.
pub const LEVEL_VARIABLE: &str = "VOXCPM_KERNEL";

/// A set of micro-kernels, from the plainest to the widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Plain Rust: any CPU.
    Portable,
    /// AVX2 + FMA, 6 rows a call.
    Avx2,
    /// AVX-512F, 12 rows a call; bf16 products emulated.
    Avx512,
    /// AVX-512F, with bf16 products on AVX-512 BF16 (`vdpbf16ps`, twice the f32 rate).
    Avx512Bf16,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 4] = [Level::Portable, Level::Avx2, Level::Avx512, Level::Avx512Bf16];

    /// The name `VOXCPM_KERNEL` takes, and that reports show.
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
            Level::Avx512Bf16 => "avx512-bf16",
        }
    }

    /// The level `name` (trimmed, any case) names.
    pub fn parse(name: &str) -> Option<Level> {
        let name = name.trim().to_ascii_lowercase();
        Level::ALL.into_iter().find(|level| level.name() == name)
    }

    /// The CPU features this level needs beyond what every x86-64 CPU has.
    pub fn features(self) -> &'static str {
        match self {
            Level::Portable => "none",
            Level::Avx2 => "AVX2 and FMA",
            Level::Avx512 => "AVX-512F",
            Level::Avx512Bf16 => "AVX-512F and AVX-512 BF16",
        }
    }

    /// Whether bf16 products run natively at this level (rather than emulated at f32 speed).
    pub fn native_bf16(self) -> bool {
        self == Level::Avx512Bf16
    }

    /// Whether this CPU (and this build's architecture) can run the level.
    pub fn is_supported(self) -> bool {
        match self {
            Level::Portable => true,
            #[cfg(target_arch = "x86_64")]
            _ => super::x86::runs(self),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every level this CPU runs, lowest first.
    pub fn supported() -> Vec<Level> {
        Level::ALL.into_iter().filter(|level| level.is_supported()).collect()
    }

    /// Rows one call of the level's f32-input kernel takes: as many as its accumulators fit in
    /// registers (16 AVX2 registers hold 6 rows of 16 columns, 32 AVX-512 ones hold 12).
    pub(super) fn max_rows(self) -> usize {
        match self {
            Level::Portable => super::portable::MAX_ROWS,
            Level::Avx2 => 6,
            Level::Avx512 | Level::Avx512Bf16 => 12,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why `VOXCPM_KERNEL` cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    #[error("{LEVEL_VARIABLE}={0:?} is not a kernel level (use portable, avx2, avx512 or avx512-bf16)")]
    Unknown(String),
    #[error("{LEVEL_VARIABLE}={asked} needs {features}, which this CPU lacks; it runs {}", names(supported))]
    Unsupported { asked: Level, features: &'static str, supported: Vec<Level> },
}

fn names(levels: &[Level]) -> String {
    levels.iter().map(|level| level.name()).collect::<Vec<_>>().join(", ")
}

/// The level a request selects on a CPU that runs `supported` (lowest first, never empty):
/// the highest one when nothing (or an empty string) is asked.
fn select(request: Option<&str>, supported: &[Level]) -> Result<Level, LevelError> {
    let best = *supported.last().expect("every CPU runs the portable kernels");
    let Some(name) = request.filter(|name| !name.trim().is_empty()) else {
        return Ok(best);
    };
    let asked = Level::parse(name).ok_or_else(|| LevelError::Unknown(name.to_owned()))?;
    if !supported.contains(&asked) {
        return Err(LevelError::Unsupported { asked, features: asked.features(), supported: supported.to_vec() });
    }
    Ok(asked)
}

/// The level this process runs, or why `VOXCPM_KERNEL` cannot be honoured (decided once, at the
/// first call).
pub fn selected_level() -> Result<Level, LevelError> {
    selection().clone()
}

fn selection() -> &'static Result<Level, LevelError> {
    static SELECTED: OnceLock<Result<Level, LevelError>> = OnceLock::new();
    SELECTED.get_or_init(|| {
        let request = std::env::var(LEVEL_VARIABLE).ok();
        let selected = select(request.as_deref(), &Level::supported());
        match &selected {
            Ok(level) => tracing::debug!(%level, "CPU kernel level"),
            Err(error) => tracing::error!(%error, "CPU kernel level"),
        }
        selected
    })
}

/// The level this process runs.
///
/// # Panics
/// When `VOXCPM_KERNEL` names a level this CPU cannot run, or none at all: the message says
/// which levels it runs. Weights are packed at load, so a model's load fails this way (inside
/// the runtime, as an error), before any product runs.
pub fn level() -> Level {
    match selection() {
        Ok(level) => *level,
        Err(error) => panic!("{error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: &[Level] = &Level::ALL;
    const AVX2_CPU: &[Level] = &[Level::Portable, Level::Avx2];

    #[test]
    fn nothing_asked_selects_the_best_level_the_cpu_runs() {
        assert_eq!(select(None, EVERY), Ok(Level::Avx512Bf16));
        assert_eq!(select(Some(" "), AVX2_CPU), Ok(Level::Avx2));
        assert_eq!(select(None, &[Level::Portable]), Ok(Level::Portable));
    }

    #[test]
    fn any_level_the_cpu_runs_can_be_asked_for_by_name() {
        for level in Level::ALL {
            assert_eq!(select(Some(level.name()), EVERY), Ok(level));
            assert_eq!(level.to_string(), level.name());
        }
        assert_eq!(select(Some(" AVX512-BF16\n"), EVERY), Ok(Level::Avx512Bf16));
        assert_eq!(select(Some("portable"), AVX2_CPU), Ok(Level::Portable));
    }

    #[test]
    fn a_level_the_cpu_lacks_is_an_error_naming_it_and_what_the_cpu_runs() {
        let error = select(Some("avx512"), AVX2_CPU).unwrap_err();
        assert_eq!(
            error,
            LevelError::Unsupported { asked: Level::Avx512, features: "AVX-512F", supported: AVX2_CPU.to_vec() }
        );
        let message = error.to_string();
        assert!(message.contains("VOXCPM_KERNEL=avx512 needs AVX-512F"), "{message}");
        assert!(message.ends_with("it runs portable, avx2"), "{message}");
    }

    #[test]
    fn an_unknown_name_is_an_error_listing_the_levels() {
        let message = select(Some("avx-512"), EVERY).unwrap_err().to_string();
        assert!(message.contains("\"avx-512\"") && message.contains("avx512-bf16"), "{message}");
    }

    /// The chain only holds if a CPU never runs a level without the ones below it.
    #[test]
    fn this_cpu_runs_a_chain_of_levels_from_portable_up() {
        let supported = Level::supported();
        assert_eq!(supported, Level::ALL[..supported.len()], "{supported:?}");
        assert!(supported.contains(&level()), "the level in use, {}, is one the CPU runs", level());
    }

    #[test]
    fn only_the_top_level_multiplies_bf16_natively() {
        let native: Vec<Level> = Level::ALL.into_iter().filter(|level| level.native_bf16()).collect();
        assert_eq!(native, [Level::Avx512Bf16]);
    }
}
