//! `hush tag SOURCE TARGET`: another name for an image, as `docker tag` gives it.

use std::process::ExitCode;

use clap::Args;
use hush_oci::store::Store;

use super::CliResult;

#[derive(Args)]
pub(crate) struct TagArgs {
    /// The image: a name in any spelling (`ubuntu`, `docker.io/library/ubuntu:latest`),
    /// `NAME@DIGEST`, or an id or id prefix.
    source: String,
    /// The new name, `[HOST[:PORT]/]NAME[:TAG]` (`latest` if no tag is given); an image that
    /// had it loses it.
    target: String,
}

pub(crate) fn run(store: &Store, a: TagArgs) -> CliResult {
    store.tag(&a.source, &a.target)?;
    Ok(ExitCode::SUCCESS)
}
