//! `RUN --security=`: BuildKit's `runsecurity.go`. `sandbox` (the default) runs the step in the
//! usual container; `insecure` runs it privileged (every capability, no seccomp filter, every
//! device, nothing masked), which the build must allow with `--allow security.insecure`. The
//! value is taken as written and checked when the Dockerfile is parsed, before any step runs.

/// The security mode a RUN asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecurityMode {
    /// No flag, or `--security=sandbox`.
    #[default]
    Sandbox,
    /// `--security=insecure` (needs the `security.insecure` entitlement).
    Insecure,
}

impl SecurityMode {
    /// The value as written in a Dockerfile.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityMode::Sandbox => "sandbox",
            SecurityMode::Insecure => "insecure",
        }
    }

    /// Parse `sandbox` or `insecure` (the modes BuildKit knows).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sandbox" => Some(SecurityMode::Sandbox),
            "insecure" => Some(SecurityMode::Insecure),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_modes() {
        for m in [SecurityMode::Sandbox, SecurityMode::Insecure] {
            assert_eq!(SecurityMode::parse(m.as_str()), Some(m));
        }
        for bad in ["", "privileged", "Insecure", "$SEC"] {
            assert_eq!(SecurityMode::parse(bad), None, "{bad:?}");
        }
    }
}
