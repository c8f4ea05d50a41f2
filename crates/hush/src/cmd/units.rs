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
