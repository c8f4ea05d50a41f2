//! Which network each RUN gets, decided before any step runs: the build's `--network`, unless a
//! RUN asks for its own; `RUN --network=host` needs the `network.host` entitlement (buildx's
//! `--allow network.host`), or the build itself on the host network. `RUN --security=insecure`
//! needs `security.insecure`, checked in the same pass.

use hush_dockerfile::instructions::{CommandKind, NetworkMode, SecurityMode, Stages};

use crate::{BuildOptions, Error, Result};

/// The network a RUN runs on: its own `--network`, else the build's.
pub(crate) fn effective(build: NetworkMode, run: NetworkMode) -> NetworkMode {
    match run {
        NetworkMode::Default => build,
        other => other,
    }
}

/// Check the entitlements of the RUNs of the stages being built (`planned`); true when one of
/// them needs the build's private network.
pub(crate) fn check(
    stages: &Stages,
    planned: impl Iterator<Item = usize>,
    opts: &BuildOptions,
) -> Result<bool> {
    let mut private = false;
    for i in planned {
        for c in &stages.stages[i].commands {
            let CommandKind::Run(run) = &c.kind else {
                continue;
            };
            let allowed = opts.allow_network_host || opts.network == NetworkMode::Host;
            if run.network == NetworkMode::Host && !allowed {
                return Err(Error::Step {
                    message: "RUN --network=host needs the network.host entitlement, which this build was not given".into(),
                    location: c.location,
                    hint: Some(
                        "pass --allow network.host to `hush build` to let this Dockerfile use the host's network (as with `docker buildx build --allow network.host`)".into(),
                    ),
                });
            }
            if run.security == SecurityMode::Insecure && !opts.allow_security_insecure {
                return Err(Error::Step {
                    message: "RUN --security=insecure needs the security.insecure entitlement, which this build was not given".into(),
                    location: c.location,
                    hint: Some(
                        "pass --allow security.insecure to `hush build` to run this step privileged (every capability, no seccomp filter, every device), as with `docker buildx build --allow security.insecure`".into(),
                    ),
                });
            }
            private |= effective(opts.network, run.network) == NetworkMode::Default;
        }
    }
    Ok(private)
}
