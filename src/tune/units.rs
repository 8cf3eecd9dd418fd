//! How numbers read in `tune` output: counts with thousands separators,
//! bytes in binary units, rlimits that may be unlimited.

/// RLIM_INFINITY as `tune` stores it.
pub const UNLIMITED: u64 = u64::MAX;

/// 100288 → "100,288".
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 8388608 → "8 MiB"; 1536 → "1.5 KiB"; 100 → "100 B".
pub fn bytes(n: u64) -> String {
    if n == UNLIMITED {
        return "unlimited".to_owned();
    }
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut scaled = n as f64;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if scaled.fract() == 0.0 {
        format!("{scaled:.0} {}", UNITS[unit])
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

/// An rlimit value: a number or "unlimited".
pub fn limit(n: u64) -> String {
    if n == UNLIMITED {
        "unlimited".to_owned()
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(19_712), "19,712");
        assert_eq!(count(1_048_576), "1,048,576");
        assert_eq!(bytes(8 << 20), "8 MiB");
        assert_eq!(bytes(21 << 20), "21 MiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(100), "100 B");
        assert_eq!(bytes(UNLIMITED), "unlimited");
        assert_eq!(limit(UNLIMITED), "unlimited");
        assert_eq!(limit(20_000), "20000");
    }
}
