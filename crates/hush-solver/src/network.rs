//! Which network each RUN gets, decided before any step runs: the build's `--network`, unless a
//! RUN asks for its own; `RUN --network=host` needs the `network.host` entitlement (buildx's
//! `--allow network.host`), or the build itself on the host network. `RUN --security=insecure`
//! needs `security.insecure`, checked in the same pass.

use hush_dockerfile::instructions::step::StepKind;
use hush_dockerfile::instructions::{NetworkMode, SecurityMode};

use crate::error::Entitlement;
use crate::{BuildOptions, Error, Result};

/// The network a RUN runs on: its own `--network`, else the build's.
pub(crate) fn effective(build: NetworkMode, run: NetworkMode) -> NetworkMode {
    match run {
        NetworkMode::Default => build,
        other => other,
    }
}

/// Refuse a RUN the build is not entitled to: `--network=host` without `network.host` (or the
/// build itself on the host network), `--security=insecure` without `security.insecure`. Called
/// for every RUN of the plan before any step runs.
fn entitled(
    network: NetworkMode,
    security: SecurityMode,
    opts: &BuildOptions,
    location: hush_dockerfile::Location,
) -> Result<()> {
    let host_ok = opts.allow_network_host || opts.network == NetworkMode::Host;
    if network == NetworkMode::Host && !host_ok {
        return Err(Error::NotEntitled {
            entitlement: Entitlement::NetworkHost,
            location,
        });
    }
    if security == SecurityMode::Insecure && !opts.allow_security_insecure {
        return Err(Error::NotEntitled {
            entitlement: Entitlement::SecurityInsecure,
            location,
        });
    }
    Ok(())
}

/// Check the entitlements of every RUN of the plan (ONBUILD triggers included: the plan has
/// dispatched them); true when one of them runs on the build's private network.
pub(crate) fn check(plan: &crate::plan::Plan, opts: &BuildOptions) -> Result<bool> {
    let mut private = false;
    for step in plan.steps() {
        if let StepKind::Run {
            network, security, ..
        } = &step.kind
        {
            entitled(*network, *security, opts, step.location)?;
            private |= effective(opts.network, *network) == NetworkMode::Default;
        }
    }
    Ok(private)
}
