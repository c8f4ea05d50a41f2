//! Image subcommands: import, inspect, history, save, load, rmi, prune; and outputs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hush_oci::archive::Compression;
use hush_oci::reference::Reference;
use hush_oci::store::{Image, Store};

use super::units::{ago, human_size, now};
use super::{CliError, CliResult};

/// Uncompressed size limit when reading archives (decompression-bomb guard).
const UNPACK_LIMIT: u64 = 64 << 30;

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
    /// Image name or id.
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
    /// Output file.
    #[arg(short = 'o', long)]
    output: PathBuf,
}

#[derive(Args)]
pub(crate) struct LoadArgs {
    /// A docker-archive.
    #[arg(short = 'i', long)]
    input: PathBuf,
}

#[derive(Args)]
pub(crate) struct RmiArgs {
    /// Image names.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub(crate) struct PruneArgs {
    /// Remove the build cache too.
    #[arg(short = 'a', long)]
    all: bool,
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
    let img = store.resolve(&a.image)?;
    let mut sizes = Sizes::new(store);
    // With --secrets, the entries are shown with every value the audit found redacted.
    let (findings, redacted) = if a.secrets {
        super::audit::image_findings(store, &a.image, &a.secret_specs)?
    } else {
        (Vec::new(), Vec::new())
    };
    let mut history = img.config.history.clone();
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
        let size = match layer.and_then(|l| img.config.rootfs.diff_ids.get(l)) {
            Some(d) => sizes.layer(d)?,
            None => 0,
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
                img.config_digest.to_string()
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
                0 if a.no_trunc => img.config_digest.to_string(),
                0 => img.config_digest.short(),
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

/// Write to `dest` through a temp file, so a failure leaves no half-written output.
fn atomic_file(
    dest: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let tmp = dest.with_file_name(format!(
        ".{}.hush-tmp",
        dest.file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default()
    ));
    let io = |what: &str, e| CliError::Io {
        what: format!("{what} {}", dest.display()),
        source: e,
    };
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    let r = write(&mut f).and_then(|_| f.sync_all().map_err(|e| io("write", e)));
    match r {
        Ok(()) => std::fs::rename(&tmp, dest).map_err(|e| io("write", e)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

pub(crate) fn write_archive(
    store: &Store,
    img: &Image,
    tags: &[String],
    dest: &Path,
) -> Result<(), CliError> {
    atomic_file(dest, |f| {
        let w = std::io::BufWriter::with_capacity(1 << 20, f);
        Ok(hush_oci::archive::write_docker_archive(
            store, img, tags, w,
        )?)
    })
}

pub(crate) fn write_oci(
    store: &Store,
    img: &Image,
    tag: Option<&str>,
    dest: &Path,
    comp: Compression,
) -> Result<(), CliError> {
    let is_tar = dest.extension().is_some_and(|e| e == "tar");
    let dir = if is_tar {
        store.temp_dir("oci-out")?
    } else {
        dest.to_path_buf()
    };
    hush_oci::archive::write_oci_layout(store, img, tag, &dir, comp)?;
    if is_tar {
        let r = atomic_file(dest, |f| {
            let mut b = tar_builder(f);
            b.append_dir_all(".", &dir).map_err(|e| CliError::Io {
                what: "write OCI archive".into(),
                source: e,
            })?;
            b.finish().map_err(|e| CliError::Io {
                what: "write OCI archive".into(),
                source: e,
            })
        });
        let _ = std::fs::remove_dir_all(&dir);
        r?;
    }
    Ok(())
}

fn tar_builder(f: &mut std::fs::File) -> hush_oci_tar::Builder<&mut std::fs::File> {
    hush_oci_tar::Builder::new(f)
}

use crate::output::{errln, outln};
use hush_oci::tar as hush_oci_tar;

pub(crate) fn write_local(store: &Store, img: &Image, dest: &Path) -> Result<(), CliError> {
    let tmp = store.temp_dir("local-out")?;
    let lowers: Vec<PathBuf> = img
        .config
        .rootfs
        .diff_ids
        .iter()
        .rev()
        .map(|d| store.snapshot_dir(d))
        .collect();
    let r = (|| -> Result<(), CliError> {
        let ov = hush_sandbox::overlay::Overlay::mount(&tmp, &lowers, &[])?;
        std::fs::create_dir_all(dest).map_err(|e| CliError::Io {
            what: format!("create {}", dest.display()),
            source: e,
        })?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", ov.merged().display()))
            .arg(dest)
            .status()
            .map_err(|e| CliError::Io {
                what: "run cp".into(),
                source: e,
            })?;
        ov.finish()?;
        if !status.success() {
            return Err(CliError::Usage(format!(
                "copying the filesystem to {} failed",
                dest.display()
            )));
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    r
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
    write_archive(store, &img, &tags, &a.output)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn load(store: &Store, a: LoadArgs) -> CliResult {
    for (img, tags) in hush_oci::archive::load_docker_archive(store, &a.input, UNPACK_LIMIT)? {
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
fn familiar(key: &str) -> String {
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
    let pruned = store.prune(&lock, a.all)?;
    outln!(
        "Deleted {} blobs and {} snapshots",
        pruned.blobs,
        pruned.snapshots
    )?;
    super::report_swept(&pruned.swept);
    Ok(ExitCode::SUCCESS)
}
