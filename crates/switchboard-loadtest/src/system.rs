//! What the operating system says about this process and its children (Linux `/proc`):
//! resident memory, CPU time, open descriptors, child processes, load average.
//!
//! Everything returns `None` (or nothing) where `/proc` is not available.

use std::{fs, path::Path, time::Duration};

use nix::unistd::{SysconfVar, sysconf};
use serde::Serialize;

fn page_size() -> u64 {
    sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096)
}

fn clock_ticks() -> f64 {
    sysconf(SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// Resident memory of a process in bytes, from `/proc/PID/statm` (`self` for this process).
pub(crate) fn rss_bytes(pid: &str) -> Option<u64> {
    let statm = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// Resident memory of this process in bytes.
pub(crate) fn own_rss() -> Option<u64> {
    rss_bytes("self")
}

/// The fields of `/proc/PID/stat` after the command name (field 3, the state, comes first).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// CPU time (user + system) a process has used.
pub(crate) fn cpu_time(pid: &str) -> Option<Duration> {
    let fields = stat_fields(pid)?;
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Duration::try_from_secs_f64((utime + stime) as f64 / clock_ticks()).ok()
}

/// Number of open file descriptors of this process.
pub(crate) fn open_fds() -> Option<usize> {
    Some(fs::read_dir("/proc/self/fd").ok()?.count())
}

/// Whether a process exists and is not a zombie.
pub(crate) fn is_alive(pid: u32) -> bool {
    stat_fields(&pid.to_string()).is_some_and(|f| f.first().is_some_and(|s| s != "Z"))
}

/// Process ids of the children of this process (zombies included: they are not reaped yet).
pub(crate) fn child_processes() -> Vec<u32> {
    let own = std::process::id().to_string();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // The parent pid is field 4 of stat, 1 after the name.
            stat_fields(&pid.to_string()).is_some_and(|f| f.get(1) == Some(&own))
        })
        .collect()
}

/// Number of CPUs this process may use.
pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn load_average() -> Option<[f64; 3]> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

/// The machine a report was made on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs available to the loadtest.
    pub cpus: usize,
    /// Load averages (1, 5, 15 min) when the run started.
    pub load_average_start: Option<[f64; 3]>,
    /// Load averages when it ended.
    pub load_average_end: Option<[f64; 3]>,
    /// Kernel release.
    pub kernel: Option<String>,
    /// Total memory in bytes.
    pub memory_bytes: Option<u64>,
}

impl Machine {
    /// What can be read now (the end load average is filled in later).
    pub(crate) fn now() -> Self {
        Self {
            cpus: cpus(),
            load_average_start: load_average(),
            load_average_end: None,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_owned()),
            memory_bytes: fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
                let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
                let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kb * 1024)
            }),
        }
    }
}

/// The commit the loadtest runs on, if this is a git checkout with `git` installed.
pub(crate) fn git_commit(dir: &Path) -> Option<String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readings_make_sense() {
        let rss = own_rss().expect("rss");
        assert!(rss > 100_000, "{rss}");
        assert!(open_fds().expect("fds") >= 3);
        assert!(cpu_time("self").is_some());
        assert!(is_alive(std::process::id()));
        assert!(load_average().is_some());
        assert!(cpus() >= 1);
    }
}
