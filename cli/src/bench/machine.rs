//! What a benchmark result needs to be read later: when, on what, from which commit, and how
//! busy the machine was with other work while it ran (a shared machine's load swings the
//! absolute times, so each run records it).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The time now in UTC, as `2026-12-06T09:00:00Z`.
pub fn utc_now() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_date(days as i64);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", of_day / 3600, of_day % 3600 / 60, of_day % 60)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (counted in 400-year eras of
/// 146,097 days, each year starting on 1 March so that the leap day comes last).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = 400 * era + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

/// The CPU model, core count and memory.
pub fn describe() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']));
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024);
    serde_json::json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memory_bytes": memory,
    })
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([fields.next()?.ok()?, fields.next()?.ok()?, fields.next()?.ok()?])
}

/// The commit of the working directory's repository, and whether tracked files differ from it
/// (none outside a git checkout).
pub fn commit() -> serde_json::Value {
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git").args(args).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(head) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
            serde_json::json!({ "head": head, "uncommitted_changes": dirty })
        }
        None => serde_json::Value::Null,
    }
}

/// CPU time of this process and of the whole machine over a stretch of wall time.
pub struct CpuMeter {
    start: Instant,
    own: Option<f64>,
    busy: Option<f64>,
}

impl CpuMeter {
    pub fn start() -> Self {
        CpuMeter { start: Instant::now(), own: own_cpu_seconds(), busy: machine_busy_seconds() }
    }

    /// Wall time, this process's CPU time, every core's busy time (steal included), and the
    /// difference: what other work took while the benchmark ran.
    pub fn finish(&self) -> serde_json::Value {
        let wall = self.start.elapsed().as_secs_f64();
        let since = |then: Option<f64>, now: Option<f64>| Some(now? - then?);
        let own = since(self.own, own_cpu_seconds());
        let busy = since(self.busy, machine_busy_seconds());
        let other = own.zip(busy).map(|(own, busy)| (busy - own).max(0.0));
        serde_json::json!({
            "wall_seconds": wall,
            "bench_cpu_seconds": own,
            "all_cpu_busy_seconds": busy,
            "other_processes_cpu_seconds": other,
            "other_processes_cores": other.map(|other| other / wall),
        })
    }
}

/// Clock ticks per second of `/proc`'s CPU times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// User and system CPU seconds of this process (`/proc/self/stat` fields 14 and 15).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count from its closing parenthesis.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / ticks_per_second())
}

/// Busy CPU seconds of all cores together (`/proc/stat`: everything but idle and iowait).
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat.lines().next()?.split_whitespace().skip(1).map_while(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: f64 = fields.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    Some(busy / ticks_per_second())
}
