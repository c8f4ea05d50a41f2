//! Build args that exist without an `ARG` line: the proxy variables and BuildKit's platform
//! args; the values of the global ARGs (before the first FROM) and FROM lines expanded with them.

use std::collections::BTreeMap;

use super::{ArgDecl, Stage};
use crate::error::{Location, ParseError};
use crate::shell::Lexer;

/// Build arguments usable without an `ARG` (passed to RUN, never recorded in history).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The automatic platform args (BuildKit's `TARGETPLATFORM`, `BUILDPLATFORM`, …) for this host.
pub fn platform_args() -> BTreeMap<String, String> {
    let host = super::platform::Platform::host();
    let mut m = BTreeMap::new();
    for p in ["TARGET", "BUILD"] {
        m.insert(format!("{p}PLATFORM"), host.to_string());
        m.insert(format!("{p}OS"), host.os.clone());
        m.insert(format!("{p}ARCH"), host.arch.clone());
        m.insert(format!("{p}VARIANT"), host.variant.clone());
    }
    m
}

/// Values of the global ARGs (before the first FROM), for FROM lines and stage redeclarations.
pub fn global_arg_values(
    decls: &[ArgDecl],
    build_args: &BTreeMap<String, String>,
    escape: char,
) -> Result<BTreeMap<String, Option<String>>, ParseError> {
    let mut vals: BTreeMap<String, Option<String>> = platform_args()
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    let lx = Lexer::new(escape);
    for d in decls {
        let value = match (build_args.get(&d.name), &d.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(def)) => {
                let env: Vec<(String, String)> = vals
                    .iter()
                    .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                    .collect();
                Some(
                    lx.expand(def, &env)
                        .map_err(|e| ParseError::new(e.into(), Location::default()))?,
                )
            }
            (None, None) => None,
        };
        vals.insert(d.name.clone(), value);
    }
    Ok(vals)
}

/// Expand a FROM reference with the global args.
pub fn expand_from(
    stage: &Stage,
    globals: &BTreeMap<String, Option<String>>,
    escape: char,
) -> Result<String, ParseError> {
    let env: Vec<(String, String)> = globals
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
        .collect();
    Lexer::new(escape)
        .expand(&stage.base, &env)
        .map_err(|e| ParseError::new(e.into(), stage.location))
}
