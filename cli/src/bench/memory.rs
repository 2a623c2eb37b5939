//! This process's resident memory (Linux `/proc/self`), now and at its peak.

/// A `VmRSS` / `VmHWM`-style line of `/proc/self/status`, in bytes.
fn status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Peak resident memory in bytes (`VmHWM`) since start or the last [`reset_peak`], if known.
pub fn peak_rss_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// Resident memory now, in bytes (`VmRSS`), if known.
pub fn rss_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// Starts a new peak from the memory resident now (writing 5 to `clear_refs`), so that each
/// run's peak is its own; false where the kernel does not allow it.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
