//! Sizes and ages as docker prints them (`docker images`, `docker history`): go-units'
//! `HumanSizeWithPrecision(size, 3)` and `HumanDuration(d) + " ago"`.

/// Seconds since the epoch, now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `bytes` in decimal units with three significant digits, as Go's `%.3g`: `4.53MB`, `12.3kB`,
/// `512B`, and `1e+03kB` just under a megabyte (docker prints that too).
pub(crate) fn human_size(bytes: u64) -> String {
    human_size_precision(bytes, 3)
}

/// `bytes` in decimal units with `digits` significant digits (go-units'
/// `HumanSizeWithPrecision`; `units.HumanSize` is 4 digits).
pub(crate) fn human_size_precision(bytes: u64, digits: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g(size, digits), UNITS[unit])
}

/// Go's `%.{digits}g` of a non-negative number: `digits` significant digits, trailing zeros
/// dropped, exponent form (`1e+03`) when the rounded exponent is `digits` or more.
fn go_g(v: f64, digits: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // Rust's `{:.2e}` rounds to three significant digits ("4.53e6", "1.00e3"), `{:.3e}` to four.
    let sci = format!("{v:.*e}", digits - 1);
    let (mantissa, exp) = sci.split_once('e').expect("an exponent");
    let exp: i32 = exp.parse().expect("a number");
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    let digits = digits as i32;
    if !(-4..digits).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exp.abs());
    }
    let decimals = (digits - 1 - exp).max(0) as usize;
    trim(&format!("{v:.decimals$}"))
}

/// How long ago `created` (RFC 3339) was, as docker says it: `About a minute ago`,
/// `3 hours ago`, `2 weeks ago`; `N/A` without a time.
pub(crate) fn ago(created: Option<&str>) -> String {
    match created.and_then(hush_oci::image::parse_rfc3339) {
        Some(t) => format!("{} ago", human_duration((now() - t).max(0))),
        None => "N/A".into(),
    }
}

/// How long ago `t` was, as [`ago`] says it.
pub(crate) fn ago_time(t: std::time::SystemTime) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format!("{} ago", human_duration(secs))
}

/// A size as buildx's `--keep-storage` takes it (go-units' `RAMInBytes`): a number, a unit
/// `k`, `m`, `g`, `t` or `p` with an optional `i` and `b`, any case, in powers of 1024
/// (`10GB` and `10GiB` are both 10 × 2³⁰ bytes, `512MiB` 512 × 2²⁰, `100` 100 bytes).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => {
            return Err(format!(
                "invalid size {s:?}: expected a number and a unit (512MiB, 10GB)"
            ))
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected a number and a unit (512MiB, 10GB)"))?;
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("invalid size {s:?}: too large"));
    }
    Ok(bytes as u64)
}

/// A duration as Go writes one (`24h`, `1h30m`, `90s`, `1.5h`): what `--filter until=` takes.
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad =
        || format!("invalid duration {s:?}: expected a number and a unit, as 24h, 30m or 1h30m");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut secs = 0f64;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        let u_end = rest[n_end..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |i| n_end + i);
        let unit = match &rest[n_end..u_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        secs += n * unit;
        rest = &rest[u_end..];
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// go-units' `HumanDuration`, from seconds.
fn human_duration(seconds: i64) -> String {
    let minutes = seconds / 60;
    // Hours are rounded, as go-units does (`int(d.Hours() + 0.5)`).
    let hours = (seconds + 1800) / 3600;
    match seconds {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_as_buildx_takes_them() {
        assert_eq!(parse_size("10GB").unwrap(), 10 << 30);
        assert_eq!(parse_size("10gib").unwrap(), 10 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("0").unwrap(), 0);
        for bad in ["", "GB", "10XB", "ten", "-1GB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        let secs = |s: &str| parse_duration(s).unwrap().as_secs_f64();
        assert_eq!(secs("24h"), 86400.0);
        assert_eq!(secs("1h30m"), 5400.0);
        assert_eq!(secs("1.5h"), 5400.0);
        assert_eq!(secs("90s"), 90.0);
        for bad in ["", "24", "h", "1d", "1h30"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    /// go-units' own cases, and the edges between them.
    #[test]
    fn durations_as_docker_says_them() {
        let (m, h, d) = (60, 3600, 86_400);
        for (s, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (59 * m, "59 minutes"),
            (60 * m, "About an hour"),
            (h + 29 * m, "About an hour"),
            (h + 30 * m, "2 hours"),
            (47 * h, "47 hours"),
            (48 * h, "2 days"),
            (13 * d, "13 days"),
            (14 * d, "2 weeks"),
            (59 * d, "8 weeks"),
            (60 * d, "2 months"),
            (729 * d, "24 months"),
            (730 * d, "2 years"),
            (3 * 365 * d, "3 years"),
        ] {
            assert_eq!(human_duration(s), want, "{s}s");
        }
    }

    #[test]
    fn sizes_as_docker_prints_them() {
        for (b, want) in [
            (0, "0B"),
            (3, "3B"),
            (999, "999B"),
            (1000, "1kB"),
            (1234, "1.23kB"),
            (12_345, "12.3kB"),
            (123_456, "123kB"),
            (999_499, "999kB"),
            (999_999, "1e+03kB"),
            (4_530_000, "4.53MB"),
            (4_500_000, "4.5MB"),
            (1_000_000_000, "1GB"),
        ] {
            assert_eq!(human_size(b), want, "{b}");
        }
        for (b, want) in [
            (77_860_000, "77.86MB"),
            (999_999, "1000kB"),
            (1_234, "1.234kB"),
        ] {
            assert_eq!(human_size_precision(b, 4), want, "{b}");
        }
    }
}
