//! `EXPOSE` port specs, checked as BuildKit's `convert_expose.go` does: `[ip:][hostPort:]port[-end][/proto]`
//! with a protocol of tcp, udp or sctp (any case) and ports 0–65535. Only the container side
//! reaches the image (`8080:80` exposes `80/tcp`); a range exposes each port in it.

use std::net::IpAddr;

/// The `port/proto` entries of one expanded EXPOSE word, or BuildKit's error for it.
pub fn parse_port(raw: &str) -> Result<Vec<String>, String> {
    let (ip, host_port, container_port) = split_parts(raw);
    let (proto, port) =
        split_proto_port(container_port).map_err(|e| format!("invalid port: {raw:?}: {e}"))?;
    let ip = match ip.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(|| {
            format!("invalid IP address {ip}: address {ip}:: missing ']' in address")
        })?,
        None => ip,
    };
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    let (start, end) =
        parse_port_range(port).ok_or_else(|| format!("invalid containerPort: {port}"))?;
    if !host_port.is_empty() {
        let (host_start, host_end) =
            parse_port_range(host_port).ok_or_else(|| format!("invalid hostPort: {host_port}"))?;
        // A host range may go with one container port (ports to pick from), not another range.
        if end - start != host_end - host_start && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {port} and {host_port}"
            ));
        }
    }
    let proto = proto.to_ascii_lowercase();
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// `ip:host:container`, `host:container` or `container`; with more colons (an IPv6 address),
/// the last two parts are the ports.
fn split_parts(raw: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.as_slice() {
        [c] => ("", "", c),
        [h, c] => ("", h, c),
        _ => {
            let c = raw.rfind(':').unwrap_or(0);
            let h = raw[..c].rfind(':').unwrap_or(0);
            (&raw[..h], &raw[h + 1..c], &raw[c + 1..])
        }
    }
}

/// `port[/proto]` → (proto, port); no protocol means tcp.
fn split_proto_port(raw: &str) -> Result<(&str, &str), String> {
    let (port, proto) = raw.split_once('/').unwrap_or((raw, ""));
    if port.is_empty() {
        return Err("no port specified".into());
    }
    match proto.to_ascii_lowercase().as_str() {
        "" => Ok(("tcp", port)),
        "tcp" | "udp" | "sctp" => Ok((proto, port)),
        _ => Err(format!("invalid proto: {proto}")),
    }
}

/// `80` or `8000-9000` (a range that does not go down).
fn parse_port_range(ports: &str) -> Option<(u32, u32)> {
    let (start, end) = match ports.split_once('-') {
        Some((s, e)) if s != e => (s, Some(e)),
        Some((s, _)) => (s, None),
        None => (ports, None),
    };
    let start = parse_port_number(start)?;
    match end {
        None => Some((start, start)),
        Some(e) => Some((start, parse_port_number(e)?)).filter(|(s, e)| e >= s),
    }
}

/// A decimal port number, 0–65535 (Go's `ParseInt` takes a leading `+`).
fn parse_port_number(raw: &str) -> Option<u32> {
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().filter(|p| *p <= 65535)
}

#[cfg(test)]
mod tests {
    use super::parse_port;

    /// `(word, the exposed ports or BuildKit's error)`.
    const CASES: &[(&str, Result<&[&str], &str>)] = &[
        ("80", Ok(&["80/tcp"])),
        ("80/UDP", Ok(&["80/udp"])),
        ("53/sctp", Ok(&["53/sctp"])),
        ("8000-8002/udp", Ok(&["8000/udp", "8001/udp", "8002/udp"])),
        ("9-9", Ok(&["9/tcp"])),
        ("0", Ok(&["0/tcp"])),
        ("+443", Ok(&["443/tcp"])),
        ("8080:80", Ok(&["80/tcp"])),
        ("127.0.0.1:8080:80/udp", Ok(&["80/udp"])),
        ("[::1]:8080:80", Ok(&["80/tcp"])),
        ("::1:8080:80", Ok(&["80/tcp"])),
        ("8000-8001:80", Ok(&["80/tcp"])),
        (
            "80/tcpx",
            Err(r#"invalid port: "80/tcpx": invalid proto: tcpx"#),
        ),
        (
            "80/tcp/udp",
            Err(r#"invalid port: "80/tcp/udp": invalid proto: tcp/udp"#),
        ),
        ("/tcp", Err(r#"invalid port: "/tcp": no port specified"#)),
        ("http", Err("invalid containerPort: http")),
        ("65536", Err("invalid containerPort: 65536")),
        ("-1", Err("invalid containerPort: -1")),
        ("90-80", Err("invalid containerPort: 90-80")),
        ("80-", Err("invalid containerPort: 80-")),
        ("x:80", Err("invalid hostPort: x")),
        ("1.2.3:80:80", Err("invalid IP address: 1.2.3")),
        (
            "[::1:80:80",
            Err("invalid IP address [::1: address [::1:: missing ']' in address"),
        ),
        (
            "8000-8002:80-81",
            Err("invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
        ),
    ];

    #[test]
    fn ports_follow_buildkit() {
        for (word, want) in CASES {
            let got = parse_port(word);
            match want {
                Ok(ports) => assert_eq!(got.unwrap(), *ports, "{word}"),
                Err(e) => assert_eq!(got.unwrap_err(), *e, "{word}"),
            }
        }
    }
}
