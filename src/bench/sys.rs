//! What the generator reads from /proc: CPU time and peak memory of itself and of the
//! server process, and the open-files limit it raises.

use std::time::Duration;

/// User + system CPU time of process `pid` ("self" for this one), from /proc/PID/stat.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are the 12th and 13th after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_nanos(
        (utime + stime).saturating_mul(1_000_000_000) / hz,
    ))
}

/// This process's CPU time (all threads), to the nanosecond.
pub fn own_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Peak resident memory (VmHWM) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Raises the soft open-files limit towards `want` (at most the hard limit); returns the
/// soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let cur = lim.current.unwrap_or(u64::MAX);
    if cur >= want {
        return cur;
    }
    let new = lim.maximum.map_or(want, |m| m.min(want));
    let ok = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(new),
            maximum: lim.maximum,
        },
    )
    .is_ok();
    if ok { new } else { cur }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_its_own_figures() {
        assert!(super::cpu_time("self").is_some());
        assert!(super::own_cpu_time() > std::time::Duration::ZERO);
        assert!(super::peak_rss_kib("self").is_some_and(|k| k > 0));
    }
}
