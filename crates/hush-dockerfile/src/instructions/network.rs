//! `RUN --network=`: BuildKit's `runnetwork.go`. The value is taken as written (BuildKit does
//! not expand variables in it) and checked when the Dockerfile is parsed, before any step runs.

use std::fmt;

/// The network a RUN asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetworkMode {
    /// No flag, or `--network=default`: the build's network.
    #[default]
    Default,
    /// `--network=none`: an empty network namespace (loopback only).
    None,
    /// `--network=host`: the host's network (needs the `network.host` entitlement).
    Host,
}

impl NetworkMode {
    /// The value as written in a Dockerfile or on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Default => "default",
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
        }
    }

    /// Parse `default`, `none` or `host` (the modes BuildKit knows).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "default" => Some(NetworkMode::Default),
            "none" => Some(NetworkMode::None),
            "host" => Some(NetworkMode::Host),
            _ => None,
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_modes() {
        for m in [NetworkMode::Default, NetworkMode::None, NetworkMode::Host] {
            assert_eq!(NetworkMode::parse(m.as_str()), Some(m));
        }
        for bad in ["", "bridge", "Host", "$NET"] {
            assert_eq!(NetworkMode::parse(bad), None, "{bad:?}");
        }
    }
}
