//! `docker login` and `docker logout`: credentials checked against the registry, then kept in
//! docker's config (through the credential helper when one is configured), where `docker`,
//! `skopeo`, `buildx` and hush all find them.

use std::path::PathBuf;

use crate::client::Client;
use crate::reference::{api_host, registry_name};
use crate::{Credentials, DockerConfig, Options, Result};

/// Check `creds` against `registry` (`host[:port]`, an URL, or `None` for Docker Hub) — a token
/// from its token server, or `/v2/` with basic auth — and keep them. Returns the config file
/// written.
pub fn login(registry: Option<&str>, creds: Credentials, opts: &Options) -> Result<PathBuf> {
    let registry = registry_name(registry);
    let client = Client::with_credentials(
        &registry,
        api_host(&registry),
        Vec::new(),
        Some(creds),
        opts,
        &(),
    )?;
    client.check_login()?;
    let creds = client.into_credentials().expect("given above");
    let mut config = DockerConfig::load(opts.docker_config_path())?;
    config.login(&registry, &creds)?;
    Ok(config.path().to_path_buf())
}

/// Forget the credentials of `registry`. Returns whether there were any.
pub fn logout(registry: Option<&str>, opts: &Options) -> Result<bool> {
    let registry = registry_name(registry);
    DockerConfig::load(opts.docker_config_path())?.logout(&registry)
}
