//! `voxcpm batch --merge DIR... -o OUT`: the output folders of a sharded batch joined into
//! one, as an unsharded run would have written it: `OUT/manifest.json` with every line in
//! script order, and the WAVs copied beside it. Copied, not referenced or hard-linked: the
//! shard folders are scratch space on shared storage, the merged folder must outlive them,
//! and hard links fail across file systems and alias the files (an audio editor saving one in
//! place would change the other).
//!
//! Nothing is written unless every shard of the split is there exactly once, finished, and
//! rendered from the same script by the same model: a partial merge would look complete to
//! whatever reads the manifest, and re-running a missing shard is cheap (its finished lines
//! are skipped). Failed lines stay listed as failed, and make the exit status non-zero.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use voxcpm_engine::{Error, whole_file};

use super::shard::Shard;
use super::{MANIFEST, write_json};

/// One shard's output folder, as its manifest describes it.
struct ShardDir {
    dir: PathBuf,
    shard: Shard,
    /// How many lines the shard owns; its manifest lists fewer if it was interrupted.
    owned: usize,
    script: Value,
    script_digest: Value,
    model: Value,
    lines: Vec<Value>,
}

pub fn run(dirs: &[PathBuf], output: &Path) -> anyhow::Result<ExitCode> {
    let shards = dirs.iter().map(|dir| read_shard(dir)).collect::<anyhow::Result<Vec<_>>>()?;
    let by_index = check_split(&shards)?;
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    refuse_merging_into_a_shard(output, dirs)?;

    let mut lines = Vec::new();
    for shard in by_index.values() {
        for entry in &shard.lines {
            let row = entry["row"].as_u64().with_context(|| {
                format!("{}: a line without a row number ({entry})", shard.dir.join(MANIFEST).display())
            })?;
            lines.push((row, shard, entry));
        }
    }
    lines.sort_by_key(|(row, _, _)| *row);
    for (_, shard, entry) in &lines {
        if let Some(file) = entry["file"].as_str() {
            copy_wav(&shard.dir, file, output)?;
        }
    }
    let lines: Vec<Value> = lines.into_iter().map(|(_, _, entry)| entry.clone()).collect();
    let first = by_index.values().next().context("no shards")?;
    let manifest = json!({ "script": first.script, "model": first.model, "lines": lines });
    let manifest_path = output.join(MANIFEST);
    write_json(&manifest_path, &manifest)?;

    let count = |status: &str| lines.iter().filter(|entry| entry["status"] == status).count();
    let failed = count("failed");
    eprintln!(
        "{} shards merged: {} lines ({} rendered, {} unchanged, {failed} failed); manifest: {}",
        by_index.len(),
        lines.len(),
        count("rendered"),
        count("skipped"),
        manifest_path.display()
    );
    Ok(super::finished_with(failed))
}

fn read_shard(dir: &Path) -> anyhow::Result<ShardDir> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: no shard manifest (did its shard run?)", path.display()))?;
    let mut manifest: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    let record = manifest["shard"].take();
    let (Some(index), Some(count), Some(owned)) =
        (record["index"].as_u64(), record["count"].as_u64(), record["lines"].as_u64())
    else {
        bail!("{} records no shard: it was not written by `voxcpm batch --shard I/N`", path.display());
    };
    let shard = Shard::new(index, count).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let Some(lines) = manifest["lines"].as_array_mut().map(std::mem::take) else {
        bail!("{} lists no lines", path.display());
    };
    Ok(ShardDir {
        dir: dir.to_path_buf(),
        shard,
        owned: owned as usize,
        script_digest: record["script_fnv1a64"].clone(),
        script: manifest["script"].take(),
        model: manifest["model"].take(),
        lines,
    })
}

/// The shards by index, once each checked to be one whole split of one script by one model.
fn check_split(shards: &[ShardDir]) -> anyhow::Result<BTreeMap<u64, &ShardDir>> {
    let Some(first) = shards.first() else { bail!("--merge needs the shard directories") };
    let count = first.shard.count();
    let mut by_index = BTreeMap::new();
    for shard in shards {
        let (dir, first_dir) = (shard.dir.display(), first.dir.display());
        if shard.shard.count() != count {
            bail!(
                "{dir} holds shard {} but {first_dir} holds shard {}: they split differently",
                shard.shard,
                first.shard
            );
        }
        if shard.script_digest != first.script_digest {
            bail!(
                "{dir} and {first_dir} were rendered from different scripts (or versions of it: {} and {}); \
                 render every shard from the same script",
                shard.script,
                first.script
            );
        }
        if shard.model != first.model {
            bail!("{dir} was rendered by the model {} but {first_dir} by {}", shard.model, first.model);
        }
        if shard.lines.len() != shard.owned {
            bail!(
                "shard {} in {dir} is unfinished: its manifest lists {} of its {} lines (was it interrupted? \
                 run it again: finished lines are skipped)",
                shard.shard,
                shard.lines.len(),
                shard.owned
            );
        }
        if let Some(other) = by_index.insert(shard.shard.index(), shard) {
            bail!("shard {} is given twice: {} and {dir}", shard.shard, other.dir.display());
        }
    }
    let missing: Vec<String> =
        (0..count).filter(|index| !by_index.contains_key(index)).map(|index| format!("{index}/{count}")).collect();
    if !missing.is_empty() {
        bail!(
            "missing shard{} {}: no directory given holds {}; render {} with --shard",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            if missing.len() == 1 { "it" } else { "each" },
        );
    }
    Ok(by_index)
}

/// Merged into a shard's own folder, the merged manifest would replace the shard's, and the
/// next merge would find that shard missing.
fn refuse_merging_into_a_shard(output: &Path, dirs: &[PathBuf]) -> anyhow::Result<()> {
    let canonical = |path: &Path| path.canonicalize().with_context(|| format!("resolving {}", path.display()));
    let target = canonical(output)?;
    for dir in dirs {
        if canonical(dir)? == target {
            bail!("-o {} is one of the shard directories: merge into another one", output.display());
        }
    }
    Ok(())
}

/// Copies `dir/file` to `output/file`, replaced whole. `file` comes from a manifest, so it
/// must be a bare file name: nothing outside the two folders is read or written.
fn copy_wav(dir: &Path, file: &str, output: &Path) -> anyhow::Result<()> {
    if Path::new(file).file_name() != Some(file.as_ref()) {
        bail!("{}: the file {file:?} is not a file name", dir.join(MANIFEST).display());
    }
    let source = dir.join(file);
    let mut reader = File::open(&source).with_context(|| format!("{}: its shard lists it", source.display()))?;
    let target = output.join(file);
    whole_file::replace(&target, |partial| {
        let mut writer = File::create(partial).map_err(|e| Error::write(partial, e))?;
        std::io::copy(&mut reader, &mut writer).map_err(|e| Error::write(partial, e))?;
        Ok(())
    })?;
    Ok(())
}
