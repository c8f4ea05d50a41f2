//! Image subcommands: import, inspect, history, save, load, rmi, prune; and outputs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hush_oci::reference::Reference;
use hush_oci::source::{Archive, Blob, SourceLayer};
use hush_oci::store::{Image, Store};

use super::outputs::{to_dest, Dest};
use super::scan::UNPACK_LIMIT;
use super::units::{ago, human_size, now};
use super::{CliError, CliResult};
use crate::output::{errln, outln};

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// A rootfs tarball (plain, gzip or zstd).
    tarball: PathBuf,
    /// Name for the image.
    name: String,
}

#[derive(Args)]
pub(crate) struct NameArgs {
    /// Image names or ids.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub(crate) struct HistoryArgs {
    /// Image name or id; a registry reference the store lacks is read from its registry
    /// (manifest and config only, nothing stored unless --keep).
    image: String,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// `table` or `json`.
    #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
    format: HistoryFormat,
    /// Mark the steps whose layers (or history entries) hold secrets, as `hush audit` finds them.
    #[arg(long)]
    secrets: bool,
    /// With --secrets: known values to look for too (`id=ID,src=PATH|env=VAR`).
    #[arg(long = "secret", requires = "secrets")]
    secret_specs: Vec<String>,
    #[command(flatten)]
    remote: super::scan::RemoteArgs,
}

/// `hush history --format`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum HistoryFormat {
    Table,
    Json,
}

#[derive(Args)]
pub(crate) struct SaveArgs {
    /// Image name or id.
    image: String,
    /// Output file (`-`, or none when standard output is not a terminal: standard output).
    #[arg(short = 'o', long)]
    output: Option<String>,
}

#[derive(Args)]
pub(crate) struct LoadArgs {
    /// A docker-archive or an OCI archive (plain, gzip or zstd), an OCI layout directory, or
    /// `-` (the default) for standard input.
    #[arg(short = 'i', long, default_value = "-")]
    input: String,
}

#[derive(Args)]
pub(crate) struct RmiArgs {
    /// Image names.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub(crate) struct PruneArgs {
    /// Remove the build cache and the `RUN --mount=type=cache` directories too.
    #[arg(short = 'a', long)]
    all: bool,
    /// Remove build-cache records (and with --all, cache mounts), least recently used first,
    /// until the store holds at most SIZE (`10GB`, `512MiB`: powers of 1024, as buildx).
    #[arg(long, value_name = "SIZE", value_parser = super::units::parse_size)]
    keep_storage: Option<u64>,
    /// `until=DURATION` (`24h`, `1h30m`): only what no build used for longer than that.
    #[arg(long, value_name = "FILTER", value_parser = parse_prune_filter)]
    filter: Vec<std::time::Duration>,
}

/// `--filter until=D`, the one filter of buildx's prune that hush has.
fn parse_prune_filter(s: &str) -> Result<std::time::Duration, String> {
    match s.split_once('=') {
        Some(("until", d)) => super::units::parse_duration(d),
        _ => Err(format!(
            "invalid filter {s:?}: hush's prune takes until=DURATION (24h, 30m)"
        )),
    }
}

pub(crate) fn import(store: &Store, a: ImportArgs) -> CliResult {
    // A bad name is refused before the tarball is read.
    Reference::parse_tag(&a.name).map_err(CliError::Reference)?;
    let img = hush_oci::archive::import_rootfs(store, &a.tarball, &a.name, now(), UNPACK_LIMIT)?;
    outln!("{}", img.config_digest)?;
    Ok(ExitCode::SUCCESS)
}

/// Layer content sizes (see [`Store::layer_content_size`]), each layer walked once per command.
pub(crate) struct Sizes<'s> {
    store: &'s Store,
    known: std::collections::HashMap<hush_oci::Digest, u64>,
}

impl<'s> Sizes<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Sizes {
            store,
            known: Default::default(),
        }
    }

    fn layer(&mut self, diff_id: &hush_oci::Digest) -> CliResult<u64> {
        if let Some(n) = self.known.get(diff_id) {
            return Ok(*n);
        }
        let n = self.store.layer_content_size(diff_id)?;
        self.known.insert(diff_id.clone(), n);
        Ok(n)
    }

    /// An image's size as docker gives it: what its layers hold.
    pub(crate) fn image(&mut self, img: &Image) -> CliResult<u64> {
        img.config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| self.layer(d))
            .sum()
    }
}

pub(crate) fn inspect(store: &Store, a: NameArgs) -> CliResult {
    let names = store.list()?;
    let mut sizes = Sizes::new(store);
    let mut out = Vec::new();
    for n in &a.images {
        let img = store.resolve(n)?;
        // Familiar, as docker shows them: `ubuntu:22.04`.
        let tags: Vec<String> = names
            .iter()
            .filter(|(_, d)| **d == img.manifest_digest)
            .map(|(k, _)| familiar(k))
            .collect();
        out.push(serde_json::json!({
            "Id": img.config_digest.to_string(),
            "RepoTags": tags,
            "RepoDigests": [],
            "Parent": "",
            "Comment": "",
            "Created": img.config.created,
            "Author": img.config.author.clone().unwrap_or_default(),
            "Config": img.config.config,
            "Architecture": img.config.architecture,
            "Os": img.config.os,
            "Size": sizes.image(&img)?,
            "RootFS": { "Type": "layers", "Layers": img.config.rootfs.diff_ids },
            "History": img.config.history,
            "Metadata": { "ManifestDigest": img.manifest_digest.to_string() },
        }));
    }
    outln!("{}", serde_json::to_string_pretty(&out).expect("json"))?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn history(store: &Store, a: HistoryArgs) -> CliResult {
    let remote = a.remote.remote()?;
    let (source, found) = super::scan::open_image(store, &a.image, &remote)?;
    let img = &source.images()[0];
    let mut sizes = Sizes::new(store);
    // With --secrets, the entries are shown with every value the audit found redacted.
    let (findings, redacted) = if a.secrets {
        let guard = super::scan::guard(&a.secret_specs, hush_scan::DEFAULT_MIN_LEN)?;
        let rules = hush_scan::rules::Rules::new();
        super::scan::audit_image(&*source, img, &a.image, &guard, &rules)?
    } else {
        (Vec::new(), Vec::new())
    };
    let mut history = img.config.parsed.history.clone();
    for (h, r) in history.iter_mut().zip(redacted) {
        h.created_by = r;
    }
    // (entry, layer size, what --secrets found for it), newest first
    let mut li = 0;
    let mut rows = Vec::new();
    for (k, h) in history.iter().enumerate() {
        let layer = (!h.empty_layer).then(|| {
            li += 1;
            li - 1
        });
        let size = match layer.and_then(|l| img.layers.get(l)) {
            Some(l) if found == super::scan::Found::Store => sizes.layer(&l.diff_id)?,
            // An image read from its registry: the size of the blob the manifest gives.
            Some(SourceLayer {
                blob: Blob::Digest(d),
                ..
            }) => d.size,
            _ => 0,
        };
        let hist_field = format!("history[{k}].created_by");
        let found: Vec<String> = findings
            .iter()
            .filter(|f| (layer.is_some() && f.layer == layer) || f.location == hist_field)
            .map(|f| format!("{} in {}", f.rule, f.location))
            .collect();
        rows.push((h, size, found));
    }
    rows.reverse();
    if a.format == HistoryFormat::Json {
        for (i, (h, size, found)) in rows.iter().enumerate() {
            let id = if i == 0 {
                img.config.digest.to_string()
            } else {
                "<missing>".into()
            };
            // `docker history --format json`'s fields and units.
            let mut row = serde_json::json!({
                "ID": id,
                "CreatedAt": h.created,
                "CreatedSince": ago(h.created.as_deref()),
                "CreatedBy": h.created_by,
                "Size": human_size(*size),
                "Comment": h.comment,
            });
            if a.secrets {
                row["Secrets"] = serde_json::json!(found);
            }
            outln!("{row}")?;
        }
    } else {
        let extra = if a.secrets { "  SECRETS" } else { "" };
        let created_by: Vec<String> = rows
            .iter()
            .map(|(h, _, _)| {
                let by = h.created_by.clone().unwrap_or_default();
                if !a.no_trunc && by.chars().count() > 45 {
                    format!("{}…", by.chars().take(44).collect::<String>())
                } else {
                    by
                }
            })
            .collect();
        let ids: Vec<String> = (0..rows.len())
            .map(|i| match i {
                0 if a.no_trunc => img.config.digest.to_string(),
                0 => img.config.digest.short(),
                _ => "<missing>".into(),
            })
            .collect();
        let ages: Vec<String> = rows
            .iter()
            .map(|(h, _, _)| ago(h.created.as_deref()))
            .collect();
        // Like docker's tabwriter: a column fits its longest entry (untruncated ones too).
        let fit = |col: &[String], min: usize| {
            col.iter()
                .map(|c| c.chars().count() + 2)
                .max()
                .unwrap_or(0)
                .max(min)
        };
        let (idw, agew, width) = (fit(&ids, 14), fit(&ages, 20), fit(&created_by, 47));
        outln!(
            "{:<idw$}{:<agew$}{:<width$}{:<10}COMMENT{extra}",
            "IMAGE",
            "CREATED",
            "CREATED BY",
            "SIZE"
        )?;
        for (i, (h, size, found)) in rows.iter().enumerate() {
            let (id, age, by) = (&ids[i], &ages[i], &created_by[i]);
            let mark = if found.is_empty() {
                String::new()
            } else {
                format!("  ⚠ {}", found.join("; "))
            };
            outln!(
                "{id:<idw$}{age:<agew$}{by:<width$}{:<10}{}{mark}",
                human_size(*size),
                h.comment.clone().unwrap_or_default()
            )?;
        }
    }
    // Informational, like `docker history`: `hush audit` is the command whose exit code gates.
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn save(store: &Store, a: SaveArgs) -> CliResult {
    let img = store.resolve(&a.image)?;
    // Saved by name, the archive names it (as `docker save` does); by id or digest, it does not.
    let names = store.list()?;
    let tags: Vec<String> = hush_oci::store::normalize_name(&a.image)
        .ok()
        .filter(|n| names.get(n) == Some(&img.manifest_digest))
        .into_iter()
        .collect();
    let dest = match a.output.as_deref() {
        Some(o) => Dest::parse(o),
        // docker's rule: an archive is never written to a terminal.
        None if std::io::stdout().is_terminal() => {
            return Err(CliError::Usage(
                "cowardly refusing to save to a terminal: use -o FILE, or redirect".into(),
            ))
        }
        None => Dest::Stdout,
    };
    to_dest(&dest, |w| {
        hush_oci::export::docker::write(store, &img, &tags, w)
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn load(store: &Store, a: LoadArgs) -> CliResult {
    let scratch = store.temp_dir("load")?;
    let loaded = (|| -> Result<_, CliError> {
        let source = if a.input == "-" {
            // Ctrl-C ends a wait for a writer that never comes.
            hush_sandbox::signals::exit_on_signal(|| {
                Archive::open_stream(
                    std::io::stdin(),
                    Path::new("standard input"),
                    &scratch,
                    UNPACK_LIMIT,
                )
            })?
        } else {
            Archive::open_path(Path::new(&a.input), &scratch, UNPACK_LIMIT)?
        };
        Ok(hush_oci::source::load(store, &source, UNPACK_LIMIT)?)
    })();
    hush_oci::store::remove_tree(&scratch)?;
    for (img, tags) in loaded? {
        if tags.is_empty() {
            outln!("Loaded image ID: {}", img.config_digest)?;
        }
        for t in tags {
            outln!("Loaded image: {}", familiar(&t))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An index key as docker shows a name: `ubuntu:22.04` for `docker.io/library/ubuntu:22.04`
/// (a key that is no reference, kept from an older hush, as it is).
pub(crate) fn familiar(key: &str) -> String {
    Reference::parse(key).map_or_else(|_| key.to_string(), |r| r.familiar())
}

pub(crate) fn rmi(store: &Store, a: RmiArgs) -> CliResult {
    let mut code = ExitCode::SUCCESS;
    for n in &a.images {
        if let Some(key) = store.untag(n)? {
            if hush_oci::store::is_untagged_id(&key) {
                outln!("Deleted: {key}")?;
            } else {
                outln!("Untagged: {}", familiar(&key))?;
            }
        } else {
            errln!("error: No such image: {n}");
            code = ExitCode::from(1);
        }
    }
    Ok(code)
}

pub(crate) fn prune(store: &Store, a: PruneArgs) -> CliResult {
    // Blocks while builds, loads or imports run (they hold the lock shared), and keeps new ones
    // waiting until it is done.
    let lock = hush_sandbox::signals::exit_on_signal(|| {
        store.lock_exclusive(&mut || {
            errln!("waiting for the hush commands using the store to finish")
        })
    })?;
    let opts = hush_oci::store::PruneOptions {
        all: a.all,
        // Several `until` filters: the strictest, as they all must hold.
        until: a.filter.into_iter().max(),
        keep_storage: a.keep_storage,
        keep_untagged: false,
    };
    let pruned = store.prune(&lock, &opts)?;
    report_pruned(&pruned)?;
    super::report_swept(&pruned.swept);
    Ok(ExitCode::SUCCESS)
}

/// What a prune removed, and what it gave back (docker's "Total reclaimed space").
pub(crate) fn report_pruned(p: &hush_oci::store::Pruned) -> CliResult<()> {
    outln!("Deleted {} blobs and {} snapshots", p.blobs, p.snapshots)?;
    if p.records > 0 || p.mounts > 0 {
        outln!(
            "Deleted {} build-cache records and {} cache mounts",
            p.records,
            p.mounts
        )?;
    }
    outln!("Total reclaimed space: {}", human_size(p.reclaimed))?;
    Ok(())
}
