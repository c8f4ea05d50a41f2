//! `FROM --platform=…`: expanded with the global ARGs and the platform args (`$BUILDPLATFORM`,
//! `$TARGETPLATFORM`, …) and parsed as containerd's `platforms.Parse` does (BuildKit's
//! `dockerfile2llb`): `os`, `arch`, `os/arch` or `os/arch/variant`, with its normalisations
//! (`x86_64` → `amd64`, `aarch64` → `arm64`, `armhf` → `arm/v7`) and its error messages.

use std::collections::BTreeMap;
use std::fmt;

use super::Stage;
use crate::error::{ParseError, ParseErrorKind};
use crate::shell::Lexer;

/// An OS, architecture and variant, normalised so that equal platforms compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`, …
    pub os: String,
    /// `amd64`, `arm64`, `arm`, …
    pub arch: String,
    /// `v7` (arm), `v9` (arm64), … (empty: none, or the architecture's default).
    pub variant: String,
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

impl Platform {
    /// An OS, architecture and variant as found in an image config, normalised.
    pub fn new(os: &str, arch: &str, variant: &str) -> Self {
        let (arch, variant) = normalize_arch(arch, variant);
        Platform {
            os: os.to_ascii_lowercase(),
            arch,
            variant,
        }
    }

    /// The platform this host builds for (`linux/amd64` on x86-64).
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "riscv64gc" => "riscv64",
            a => a,
        };
        Platform::new("linux", arch, "")
    }

    /// Parse a platform specifier (containerd's `platforms.Parse`).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let invalid = |what: String| Err(format!("{what}: invalid argument"));
        if spec.contains('*') {
            return invalid(format!("{spec:?}: wildcards not yet supported"));
        }
        let parts: Vec<&str> = spec.splitn(4, '/').collect();
        let Some(os) = os_name(parts[0]) else {
            return invalid(format!(
                "{:?} is an invalid OS component of {spec:?}: OSAndVersion specifier component must match {OS_RE:?}",
                parts[0]
            ));
        };
        if let Some(bad) = parts[1..].iter().find(|p| !is_specifier(p)) {
            return invalid(format!(
                "{bad:?} is an invalid component of {spec:?}: platform specifier component must match {SPECIFIER_RE:?}"
            ));
        }
        let host = Platform::host();
        match parts.as_slice() {
            [_] if KNOWN_OS.contains(&os.as_str()) => Ok(Platform { os, ..host }),
            [arch] => {
                let p = Platform::new(&host.os, arch, "");
                if KNOWN_ARCH.contains(&p.arch.as_str()) {
                    Ok(p)
                } else {
                    invalid(format!(
                        "{spec:?}: unknown operating system or architecture"
                    ))
                }
            }
            [_, arch] => Ok(Platform::new(&os, arch, "")),
            [_, arch, variant] => Ok(Platform::new(&os, arch, variant)),
            _ => invalid(format!("{spec:?}: cannot parse platform specifier")),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

const OS_RE: &str = r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$";
const SPECIFIER_RE: &str = "^[A-Za-z0-9_.-]+$";

/// The OS of `<os>[(<version>[+<feature>]*)]`, lower-cased (`macos` is `darwin`).
fn os_name(part: &str) -> Option<String> {
    let (name, options) = match part.split_once('(') {
        Some((n, rest)) => (n, Some(rest.strip_suffix(')')?)),
        None => (part, None),
    };
    let ok =
        |c: char, extra: &str| c.is_ascii_alphanumeric() || "_-".contains(c) || extra.contains(c);
    if name.is_empty() || !name.chars().all(|c| ok(c, "")) {
        return None;
    }
    if let Some(o) = options {
        let (version, features) = o.split_once('+').unwrap_or((o, ""));
        let features_ok = features.is_empty()
            || features
                .split('+')
                .all(|f| !f.is_empty() && f.chars().all(|c| ok(c, ".%")));
        if !version.chars().all(|c| ok(c, ".%")) || !features_ok {
            return None;
        }
    }
    Some(match name.to_ascii_lowercase().as_str() {
        "macos" => "darwin".into(),
        n => n.into(),
    })
}

fn is_specifier(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// containerd's `normalizeArch`, with the default variants dropped so that `linux/arm64/v8`
/// equals `linux/arm64` and `linux/arm` equals `linux/arm/v7`.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_ascii_lowercase(), variant.to_ascii_lowercase());
    let (arch, variant): (&str, &str) = match (arch.as_str(), variant.as_str()) {
        ("i386", _) => ("386", ""),
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", ""),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
        ("aarch64" | "arm64", "8" | "v8" | "v8.0") => ("arm64", ""),
        ("aarch64" | "arm64", "9" | "9.0" | "v9.0") => ("arm64", "v9"),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) | ("arm", "" | "7" | "v7") => ("arm", ""),
        ("armel", _) => ("arm", "v6"),
        ("arm", "5") => ("arm", "v5"),
        ("arm", "6") => ("arm", "v6"),
        ("arm", "8") => ("arm", "v8"),
        (a, v) => (a, v),
    };
    (arch.to_string(), variant.to_string())
}

/// The platform a stage's `FROM --platform` asks for, expanded with the global ARGs (which hold
/// the platform args), or `None` without the flag. BuildKit's messages.
pub fn stage_platform(
    stage: &Stage,
    globals: &BTreeMap<String, Option<String>>,
    escape: char,
) -> Result<Option<Platform>, ParseError> {
    let Some(raw) = &stage.platform else {
        return Ok(None);
    };
    let fail = |msg: String| ParseError::new(ParseErrorKind::Syntax(msg), stage.location);
    let env: Vec<(String, String)> = globals
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
        .collect();
    let value = Lexer::new(escape).expand(raw, &env).map_err(|e| {
        fail(format!(
            "failed to process arguments for platform {raw}: {e}"
        ))
    })?;
    if value.is_empty() {
        return Err(fail(format!("empty platform value from expression {raw}"))
            .with_hint("declare the ARG before the first FROM, or pass it with --build-arg"));
    }
    Platform::parse(&value)
        .map(Some)
        .map_err(|e| fail(format!("failed to parse platform {raw}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifiers_parse_and_normalise_as_containerd() {
        let host = Platform::host();
        let p = |os: &str, arch: &str, variant: &str| Platform {
            os: os.into(),
            arch: arch.into(),
            variant: variant.into(),
        };
        let cases = [
            ("linux/amd64", p("linux", "amd64", "")),
            ("Linux/X86_64", p("linux", "amd64", "")),
            ("linux/aarch64", p("linux", "arm64", "")),
            ("linux/arm64/v8", p("linux", "arm64", "")),
            ("linux/arm64/v9.0", p("linux", "arm64", "v9")),
            ("linux/arm", p("linux", "arm", "")),
            ("linux/arm/v7", p("linux", "arm", "")),
            ("linux/armhf", p("linux", "arm", "")),
            ("linux/arm/v6", p("linux", "arm", "v6")),
            ("linux/386", p("linux", "386", "")),
            ("windows(10.0.17763)/amd64", p("windows", "amd64", "")),
            (
                "linux",
                Platform {
                    os: "linux".into(),
                    ..host.clone()
                },
            ),
            (
                "s390x",
                Platform {
                    arch: "s390x".into(),
                    ..host.clone()
                },
            ),
            ("linux/madeup", p("linux", "madeup", "")),
        ];
        for (spec, want) in cases {
            assert_eq!(Platform::parse(spec).unwrap(), want, "{spec}");
        }
    }

    #[test]
    fn bad_specifiers_get_containerds_errors() {
        let cases = [
            (
                "linux/*",
                r#""linux/*": wildcards not yet supported: invalid argument"#,
            ),
            (
                "madeup",
                r#""madeup": unknown operating system or architecture: invalid argument"#,
            ),
            (
                "linux/amd64/v2/x",
                r#""linux/amd64/v2/x": cannot parse platform specifier: invalid argument"#,
            ),
            (
                "linux/am d64",
                r#""am d64" is an invalid component of "linux/am d64": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument"#,
            ),
            (
                "linux//amd64",
                r#""" is an invalid component of "linux//amd64": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument"#,
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(Platform::parse(spec).unwrap_err(), want, "{spec}");
        }
        assert!(Platform::parse("li.nux/amd64")
            .unwrap_err()
            .starts_with(r#""li.nux" is an invalid OS component of "li.nux/amd64""#));
    }

    #[test]
    fn the_flag_expands_with_the_platform_args() {
        use crate::instructions::args::global_arg_values;
        use crate::instructions::parse_stages;
        let text = "ARG P=linux/arm64\nFROM --platform=$BUILDPLATFORM a\nFROM --platform=$P b\nFROM --platform=$NOPE c\nFROM --platform=linux/x/y/z d\nFROM e\n";
        let st = parse_stages(&crate::parser::parse(text).unwrap()).unwrap();
        let g = global_arg_values(&st.global_args, &BTreeMap::new(), '\\').unwrap();
        let at = |i: usize| stage_platform(&st.stages[i], &g, '\\');
        assert_eq!(at(0).unwrap(), Some(Platform::host()));
        assert_eq!(at(1).unwrap(), Some(Platform::new("linux", "arm64", "")));
        let e = at(2).unwrap_err();
        assert_eq!(e.to_string(), "empty platform value from expression $NOPE");
        assert_eq!(e.location.start_line, 4);
        assert!(at(3)
            .unwrap_err()
            .to_string()
            .starts_with("failed to parse platform linux/x/y/z: "));
        assert_eq!(at(4).unwrap(), None);
    }
}
