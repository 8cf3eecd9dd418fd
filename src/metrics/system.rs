//! Host and process figures read from /proc and the clock: CPU time of a
//! thread and of the process, load average, memory. Each read is a few
//! syscalls; shards sample them once per second, never per message.

use std::time::Duration;

/// CPU time consumed by the calling thread.
pub fn thread_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time consumed by the whole process.
pub fn process_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// 1, 5 and 15 minute load averages.
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

/// Memory figures in bytes.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Memory {
    /// Resident set of this process.
    pub process_rss_bytes: u64,
    pub host_total_bytes: u64,
    pub host_available_bytes: u64,
    /// host_total − host_available.
    pub host_used_bytes: u64,
}

pub fn memory() -> Memory {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let total = kib_field(&meminfo, "MemTotal:") * 1024;
    let available = kib_field(&meminfo, "MemAvailable:") * 1024;
    Memory {
        process_rss_bytes: kib_field(&status, "VmRSS:") * 1024,
        host_total_bytes: total,
        host_available_bytes: available,
        host_used_bytes: total.saturating_sub(available),
    }
}

/// Parses "Key:   1234 kB" lines.
fn kib_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Turns CPU-time samples into a usage ratio (1.0 = one core fully busy).
#[derive(Debug)]
pub struct CpuMeter {
    last_cpu: Duration,
    last_wall: std::time::Instant,
    usage: f64,
}

impl CpuMeter {
    pub fn new(cpu: Duration) -> Self {
        Self {
            last_cpu: cpu,
            last_wall: std::time::Instant::now(),
            usage: 0.0,
        }
    }

    /// Feeds a new sample; returns the usage since the previous one.
    pub fn sample(&mut self, cpu: Duration, now: std::time::Instant) -> f64 {
        let wall = now.duration_since(self.last_wall).as_secs_f64();
        if wall > 0.0 {
            self.usage = cpu.saturating_sub(self.last_cpu).as_secs_f64() / wall;
        }
        self.last_cpu = cpu;
        self.last_wall = now;
        self.usage
    }

    /// Like [`sample`](Self::sample), but keeps the last figure while less
    /// than `window` has passed: readers that come often (a scrape, a stats
    /// request) then see usage over a meaningful span, not over the few
    /// milliseconds since the previous reader.
    pub fn sample_over(&mut self, cpu: Duration, now: std::time::Instant, window: Duration) -> f64 {
        if now.duration_since(self.last_wall) < window {
            return self.usage;
        }
        self.sample(cpu, now)
    }

    pub fn usage(&self) -> f64 {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_fields() {
        assert_eq!(kib_field("MemTotal:  2048 kB\nX: 1", "MemTotal:"), 2048);
        assert_eq!(kib_field("nothing", "MemTotal:"), 0);
        let m = memory();
        assert!(m.host_total_bytes > 0 && m.process_rss_bytes > 0);
    }

    #[test]
    fn cpu_meter_is_a_ratio() {
        let t0 = std::time::Instant::now();
        let mut m = CpuMeter::new(Duration::from_millis(0));
        let u = m.sample(Duration::from_millis(500), t0 + Duration::from_secs(1));
        assert!((u - 0.5).abs() < 0.01, "{u}");
        // A reader 10 ms later keeps the figure of the last full window.
        let t1 = t0 + Duration::from_millis(1010);
        let kept = m.sample_over(Duration::from_millis(510), t1, Duration::from_secs(1));
        assert_eq!(kept, u);
        let t2 = t0 + Duration::from_secs(2);
        let next = m.sample_over(Duration::from_millis(1500), t2, Duration::from_secs(1));
        assert!((next - 1.0).abs() < 0.01, "{next}");
    }
}
