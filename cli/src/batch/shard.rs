//! `--shard I/N`: which lines of a script one of N machines renders.
//!
//! A line belongs to shard `FNV-1a-64(id) mod N`, counted from 0 as Kubernetes counts its
//! `JOB_COMPLETION_INDEX` (a Slurm array from 1 subtracts its first index). The id, not the
//! row, decides: adding, removing or reordering lines moves no other line to another shard,
//! so a re-run shard finds its earlier renderings in its own folder and skips them, and the
//! rows that repeat an id land together, where the duplicate is reported once. FNV-1a is
//! specified by two published constants, so the split never changes with the Rust version
//! or platform (std's `DefaultHasher` promises neither) and is pinned by its test vectors.
//! A row without an id (unreadable, or a blank id cell) is a failed row of shard 0.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde_json::{Value, json};

/// The sharding options of `voxcpm batch`: render one share, or join the shares.
#[derive(clap::Args)]
pub struct ShardArgs {
    /// Render only share I of N (I from 0 to N-1), chosen by a hash of each line's id, into -o
    /// with a manifest that records the shard (e.g. Kubernetes' $JOB_COMPLETION_INDEX/N).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Join the output folders of every shard into -o: one manifest in script order, with the
    /// WAVs copied. Refuses missing, repeated or unfinished shards. Renders nothing.
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with_all = ["script", "shard", "force"])]
    pub merge: Vec<PathBuf>,
}

/// Shard `index` of `count`, `index` counted from 0 (below `count`: [`Shard::new`] checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// Shard `index` of `count`, if there is such a shard.
    pub fn new(index: u64, count: u64) -> Result<Shard, String> {
        if count == 0 {
            return Err("N is 0: there must be at least one shard".into());
        }
        if index >= count {
            return Err(format!(
                "shard {index} of {count} does not exist: shards are counted from 0 to {} (Kubernetes' \
                 JOB_COMPLETION_INDEX as it is; a Slurm array from 1: $SLURM_ARRAY_TASK_ID minus 1)",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether the row with this id is this shard's to render.
    pub fn owns(&self, id: Option<&str>) -> bool {
        id.map_or(0, |id| fnv1a_64(id.as_bytes()) % self.count) == self.index
    }

    /// What a shard's manifest records: the split, how many lines it owns (so a merge knows
    /// an interrupted shard from a finished one) and which script it split.
    pub fn record(&self, lines: usize, script_bytes: &[u8]) -> Value {
        json!({
            "index": self.index,
            "count": self.count,
            "lines": lines,
            "script_fnv1a64": script_digest(script_bytes),
        })
    }
}

/// The script's fingerprint in a shard's manifest: shards of different versions of a script
/// number their rows differently and cannot be merged.
fn script_digest(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a_64(bytes))
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let form = "takes I/N, shard I of N with I from 0 to N-1 (e.g. 0/4)";
        let (index, count) = text.split_once('/').ok_or(format!("no '/': --shard {form}"))?;
        let number = |part: &str, name: &str| {
            part.parse::<u64>().map_err(|_| format!("{name} {part:?} is not a whole number: --shard {form}"))
        };
        Shard::new(number(index, "I")?, number(count, "N")?)
    }
}

/// 64-bit FNV-1a (the offset basis and prime of the FNV specification).
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}
