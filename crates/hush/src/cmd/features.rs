//! `hush features --unsupported`: the conformance suite's feature names hush lacks.

use std::process::ExitCode;

use crate::output::outln;
use clap::Args;

/// Features of `../shared/conformance/README.md` not implemented yet. Keep this honest.
const UNSUPPORTED: &[&str] = &[];

#[derive(Args)]
pub(crate) struct FeaturesArgs {
    /// List only what is not supported.
    #[arg(long)]
    unsupported: bool,
}

pub(crate) fn run(a: &FeaturesArgs) -> super::CliResult {
    if a.unsupported {
        for f in UNSUPPORTED {
            outln!("{f}")?;
        }
    } else {
        outln!("unsupported: {}", UNSUPPORTED.join(" "))?;
    }
    Ok(ExitCode::SUCCESS)
}
