//! What `hush audit` and `hush history --secrets` share: the image a target names, read through
//! one `ImageSource` (the store, a docker-archive, an OCI layout or archive, standard input),
//! and the audit of it, its history redacted.

use std::path::Path;

use hush_oci::source::{Archive, ImageSource, SourceImage, StoreImage};
use hush_oci::store::Store;
use hush_scan::audit::{audit, Finding, Layer};

use super::CliError;
use crate::output::errln;

/// Uncompressed size limit of an archive and of each layer read.
pub(crate) const UNPACK_LIMIT: u64 = 64 << 30;

/// The source a target names: `-` (standard input), a file or directory (a docker-archive or an
/// OCI layout), else an image of the store. `scratch` holds what a compressed archive or
/// standard input is copied to.
pub(crate) fn open<'s>(
    store: &'s Store,
    target: &str,
    scratch: &Path,
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
        Box::new(StoreImage::resolve(store, target)?)
    })
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
