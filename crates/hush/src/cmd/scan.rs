//! What `hush audit` and `hush history` share: the image a target names, read through one
//! `ImageSource` (the store, a docker-archive, an OCI layout or archive, standard input, a
//! registry), and the audit of it, its history redacted.

use std::path::Path;

use clap::Args;
use hush_oci::source::{Archive, ImageSource, SourceImage, StoreImage};
use hush_oci::store::Store;
use hush_registry::{ImageRef, Options, Platform, RegistryImage};
use hush_scan::audit::{audit, Finding, Layer};

use super::transfer::Transfers;
use super::CliError;
use crate::output::errln;
use crate::progress::ProgressMode;

/// Uncompressed size limit of an archive and of each layer read.
pub(crate) const UNPACK_LIMIT: u64 = 64 << 30;

/// How `audit` and `history` read an image the store lacks from its registry.
#[derive(Args)]
pub(crate) struct RemoteArgs {
    /// Keep an image read from its registry in the store, as `hush pull` would (by default
    /// nothing is stored).
    #[arg(long)]
    keep: bool,
    /// The platform to read from a multi-platform image of a registry (os/arch[/variant]; the
    /// host's by default).
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    registry: super::registry::RegistryFlags,
}

impl RemoteArgs {
    pub(crate) fn remote(&self) -> Result<Remote, CliError> {
        let mut options = self.registry.options()?;
        if let Some(p) = &self.platform {
            options =
                options.platform(Platform::parse(p).map_err(|e| CliError::Usage(e.to_string()))?);
        }
        Ok(Remote {
            options,
            transfers: Transfers::new(ProgressMode::Auto, false),
            keep: self.keep,
        })
    }
}

/// What reading from a registry takes: its options, where its progress goes, and `--keep`.
pub(crate) struct Remote {
    options: Options,
    transfers: Transfers,
    keep: bool,
}

/// The source a target names: `-` (standard input), a file or directory (a docker-archive or an
/// OCI layout), else an image of the store or of its registry ([`open_image`]). `scratch`
/// holds what a compressed archive or standard input is copied to.
pub(crate) fn open<'s>(
    store: &'s Store,
    target: &str,
    scratch: &Path,
    remote: &'s Remote,
) -> Result<Box<dyn ImageSource + 's>, CliError> {
    let path = Path::new(target);
    Ok(if target == "-" {
        Box::new(Archive::open_stream(
            std::io::stdin(),
            Path::new("standard input"),
            scratch,
            UNPACK_LIMIT,
        )?)
    } else if path.exists() {
        Box::new(Archive::open_path(path, scratch, UNPACK_LIMIT)?)
    } else {
        open_image(store, target, remote)?.0
    })
}

/// Where [`open_image`] found an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// In the store (with `--keep`, after pulling it).
    Store,
    /// In its registry, read there.
    Registry,
}

/// The image of the store a name or id resolves to; else, for a registry reference, the image
/// of its registry: read there without storing anything (a [`RegistryImage`], checked as a pull
/// checks), or with `--keep` pulled into the store and read from it.
pub(crate) fn open_image<'s>(
    store: &'s Store,
    target: &str,
    remote: &'s Remote,
) -> Result<(Box<dyn ImageSource + 's>, Found), CliError> {
    let missing = match StoreImage::resolve(store, target) {
        Ok(s) => return Ok((Box::new(s), Found::Store)),
        Err(e @ hush_oci::Error::ImageNotFound(_)) => e,
        Err(e) => return Err(e.into()),
    };
    // An id names no registry image; a name that is no reference is the store's error.
    let reference = match ImageRef::parse(target) {
        Ok(r) if !target.starts_with("sha256:") => r,
        _ => return Err(missing.into()),
    };
    remote.transfers.line(&format!(
        "{target} is not in the store: reading it from {}",
        reference.registry()
    ));
    if remote.keep {
        let pulled = hush_registry::pull(store, &reference, &remote.options, &remote.transfers)?;
        return Ok((
            Box::new(StoreImage::resolve(store, &pulled.name)?),
            Found::Store,
        ));
    }
    let image = RegistryImage::open(store, &reference, &remote.options, &remote.transfers)?;
    Ok((Box::new(image), Found::Registry))
}

/// The image of a source that is audited: its first (an archive of several says so).
pub(crate) fn first_image<'a>(source: &'a dyn ImageSource, target: &str) -> &'a SourceImage {
    let images = source.images();
    if images.len() > 1 {
        errln!(
            "warning: {target} holds {} images: only the first is read",
            images.len()
        );
    }
    &images[0]
}

/// The secrets of `--secret` specs as a guard.
pub(crate) fn guard(specs: &[String], min_len: usize) -> Result<hush_scan::Guard, CliError> {
    let secrets = hush_sandbox::signals::exit_on_signal(|| {
        hush_secrets::Secrets::load(specs, hush_secrets::DEFAULT_SIZE_LIMIT, &|k| {
            std::env::var(k).ok()
        })
    })?;
    Ok(hush_scan::Guard::new(
        secrets.iter().map(|(id, s)| (id, s.expose())),
        min_len,
    ))
}

/// What the audit finds in `img`, and its history entries (`created_by`, in order) with every
/// value found redacted.
pub(crate) fn audit_image(
    source: &dyn ImageSource,
    img: &SourceImage,
    target: &str,
    guard: &hush_scan::Guard,
    rules: &hush_scan::rules::Rules,
) -> Result<(Vec<Finding>, Vec<Option<String>>), CliError> {
    let names = img.config.layer_instructions();
    let mut layers = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        layers.push(Layer {
            instruction: names.get(i).cloned().unwrap_or_default(),
            tar: source.open_layer(l, UNPACK_LIMIT)?,
        });
    }
    let found = audit(layers, &img.config.bytes, guard, rules).map_err(|e| CliError::Io {
        what: format!("read the layers of {target}"),
        source: e,
    })?;
    let history = img
        .config
        .parsed
        .history
        .iter()
        .map(|h| h.created_by.as_deref().map(|t| found.redactor.redact(t)))
        .collect();
    Ok((found.findings, history))
}
