//! `voxcpm normalize`: the text as `--normalize` speaks it, for users and for checks.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use voxcpm_engine::text;

#[derive(clap::Args)]
pub struct NormalizeArgs {
    /// The text; "-" reads standard input and normalises each line on its own.
    text: String,
}

pub fn run(args: NormalizeArgs) -> anyhow::Result<ExitCode> {
    if args.text != "-" {
        let normalized = text::normalize(&args.text);
        anyhow::ensure!(
            !normalized.trim().is_empty(),
            "nothing is left to speak after normalisation (the text holds only emoji, markup or code)"
        );
        println!("{normalized}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let mut empty = Vec::new();
    let stdin = std::io::stdin().lock();
    for (index, line) in stdin.split(b'\n').enumerate() {
        let line = line.context("reading standard input")?;
        let line = String::from_utf8(line).map_err(|e| {
            anyhow::anyhow!(
                "standard input line {} is not valid UTF-8 (at byte {})",
                index + 1,
                e.utf8_error().valid_up_to()
            )
        })?;
        let normalized = text::normalize(line.trim_end_matches('\r'));
        if normalized.trim().is_empty() && !line.trim().is_empty() {
            empty.push(index + 1);
        }
        writeln!(out, "{normalized}").context("writing to stdout")?;
    }
    if !empty.is_empty() {
        eprintln!("error: nothing is left to speak after normalisation on line(s) {empty:?}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
