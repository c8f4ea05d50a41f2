//! `hush audit TARGET`: what an image gives away — known secret values (`--secret`, the same
//! forms as the leak guard) and credentials recognised by the detector rules, in every layer
//! (deleted files included) and in the config and history.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hush_oci::bounded::Bounded;
use hush_oci::image::ImageConfig;
use hush_oci::store::Store;
use hush_oci::tarindex::{TarIndex, MAX_DOCUMENT};
use hush_scan::audit::{audit, Finding, Layer};

use super::{CliError, CliResult};
use crate::output::{errln, outln};

#[derive(Args)]
pub(crate) struct AuditArgs {
    /// An image in the store, a docker-archive (`docker save`), or an OCI layout (dir or tar).
    target: String,
    /// Known secret values to look for: `id=ID,src=PATH|env=VAR` (as for `hush build`).
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// `table`, `json` or `sarif` (SARIF 2.1.0, for GitHub code scanning).
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    format: AuditFormat,
    /// Known values shorter than this are not looked for (and are reported).
    #[arg(long, default_value_t = hush_scan::DEFAULT_MIN_LEN)]
    min_len: usize,
    /// `prefix`: a finding of a rule whose values start with a public prefix shows that prefix and
    /// the last 2 characters (`ghp_…A5`), other findings nothing; `none`: no preview at all.
    #[arg(long, value_enum, default_value_t = Preview::Prefix)]
    preview: Preview,
}

/// `hush audit --format`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuditFormat {
    Table,
    Json,
    Sarif,
}

/// `hush audit --preview`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Preview {
    Prefix,
    None,
}

/// Uncompressed size limit of an archive and of each layer audited.
const UNPACK_LIMIT: u64 = 64 << 30;

pub(crate) fn run(store: &Store, a: AuditArgs) -> CliResult {
    let secrets = hush_sandbox::signals::exit_on_signal(|| {
        hush_secrets::Secrets::load(&a.secrets, hush_secrets::DEFAULT_SIZE_LIMIT, &|k| {
            std::env::var(k).ok()
        })
    })?;
    let guard = hush_scan::Guard::new(secrets.iter().map(|(id, s)| (id, s.expose())), a.min_len);
    for t in guard.too_short() {
        errln!(
            "warning: secret {:?}: {} is {} bytes, shorter than --min-len {}: not looked for",
            t.secret_id,
            t.what,
            t.len,
            a.min_len
        );
    }
    let rules = hush_scan::rules::Rules::new();
    let tmp = store.temp_dir("audit")?;
    let result = (|| {
        let (config, layers) = open_target(store, &a.target, &tmp)?;
        audit(layers, &config, &guard, &rules).map_err(|e| CliError::Io {
            what: format!("read the layers of {}", a.target),
            source: e,
        })
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    let mut findings = result?.findings;
    if a.preview == Preview::None {
        for f in &mut findings {
            f.preview = None;
        }
    }
    match a.format {
        AuditFormat::Sarif => outln!(
            "{}",
            serde_json::to_string_pretty(&super::sarif::log(&sarif_results(&findings)))
                .expect("json")
        )?,
        AuditFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&findings).expect("findings serialize")
        )?,
        AuditFormat::Table => print_table(&findings)?,
    }
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn sarif_results(findings: &[Finding]) -> Vec<super::sarif::SarifResult> {
    findings
        .iter()
        .map(|f| {
            let place = match f.layer {
                Some(l) => format!(
                    "layer {l} ({}), {}",
                    f.instruction.trim_end_matches(" # buildkit"),
                    f.location
                ),
                None => f.location.clone(),
            };
            let deleted = f
                .deleted_in
                .map(|d| format!("; deleted or overwritten in layer {d}"))
                .unwrap_or_default();
            let preview = f
                .preview
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default();
            super::sarif::SarifResult {
                rule: f.rule.clone(),
                level: "error",
                message: format!("{} in {place}{preview}{deleted}", f.rule),
                uri: f.location.trim_start_matches('/').to_string(),
                line: 0,
            }
        })
        .collect()
}

fn print_table(findings: &[Finding]) -> CliResult<()> {
    if findings.is_empty() {
        return outln!("no findings");
    }
    outln!(
        "{:<6} {:<40} {:<36} {:<28} {:<12} NOTE",
        "LAYER",
        "INSTRUCTION",
        "WHERE",
        "RULE",
        "PREVIEW"
    )?;
    for f in findings {
        let layer = f.layer.map_or("config".to_string(), |l| l.to_string());
        let mut instr = f.instruction.trim_end_matches(" # buildkit").to_string();
        if instr.chars().count() > 39 {
            instr = format!("{}…", instr.chars().take(38).collect::<String>());
        }
        let note = f
            .deleted_in
            .map(|d| format!("deleted or overwritten in layer {d}"))
            .unwrap_or_default();
        outln!(
            "{:<6} {:<40} {:<36} {:<28} {:<12} {}",
            layer,
            instr,
            f.location,
            f.rule,
            f.preview.as_deref().unwrap_or("-"),
            note
        )?;
    }
    Ok(())
}

/// What `hush audit` finds in an image of the store (for `hush history --secrets`), and the
/// image's history entries (`created_by`, in order) with every value it found redacted.
pub(crate) fn image_findings(
    store: &Store,
    image: &str,
    secret_specs: &[String],
) -> Result<(Vec<Finding>, Vec<Option<String>>), CliError> {
    let secrets = hush_sandbox::signals::exit_on_signal(|| {
        hush_secrets::Secrets::load(secret_specs, hush_secrets::DEFAULT_SIZE_LIMIT, &|k| {
            std::env::var(k).ok()
        })
    })?;
    let guard = hush_scan::Guard::new(
        secrets.iter().map(|(id, s)| (id, s.expose())),
        hush_scan::DEFAULT_MIN_LEN,
    );
    let rules = hush_scan::rules::Rules::new();
    let tmp = store.temp_dir("history")?;
    let r = open_target(store, image, &tmp).and_then(|(config, layers)| {
        let history: Vec<Option<String>> = ImageConfig::from_bytes(&config)
            .map(|c| c.history.into_iter().map(|h| h.created_by).collect())
            .unwrap_or_default();
        let found = audit(layers, &config, &guard, &rules).map_err(|e| CliError::Io {
            what: format!("read the layers of {image}"),
            source: e,
        })?;
        let history = history
            .iter()
            .map(|h| h.as_deref().map(|t| found.redactor.redact(t)))
            .collect();
        Ok((found.findings, history))
    });
    let _ = std::fs::remove_dir_all(&tmp);
    r
}

/// The config blob and the layers of a target, bottom first.
fn open_target(store: &Store, target: &str, tmp: &Path) -> Result<(Vec<u8>, Vec<Layer>), CliError> {
    let path = PathBuf::from(target);
    if path.is_file() {
        // Read as an archive (a compressed one decompressed to `tmp` first): links resolve to
        // other members, only regular members are read, every read is bounded.
        let idx = TarIndex::open_maybe_compressed(&path, tmp, UNPACK_LIMIT)?;
        return open_layout(&Source::Tar(idx), target);
    }
    if path.is_dir() {
        let root = path.canonicalize().map_err(|e| CliError::Io {
            what: format!("open {target}"),
            source: e,
        })?;
        return open_layout(&Source::Dir(root), target);
    }
    let img = store.resolve(target)?;
    let config = std::fs::read(store.blob_path(&img.config_digest)).map_err(|e| CliError::Io {
        what: format!("read the config of {target}"),
        source: e,
    })?;
    let names = instructions(&img.config);
    let mut layers = Vec::new();
    for (i, l) in img.layers()?.iter().enumerate() {
        layers.push(Layer {
            instruction: names.get(i).cloned().unwrap_or_default(),
            tar: store.open_layer(l)?,
        });
    }
    Ok((config, layers))
}

/// The `created_by` of each history entry that made a layer.
fn instructions(c: &ImageConfig) -> Vec<String> {
    c.history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| h.created_by.clone().unwrap_or_default())
        .collect()
}

/// Where a docker-archive or OCI layout's files are.
enum Source {
    /// A directory (canonical path): its links may lead anywhere inside it, not out of it.
    Dir(PathBuf),
    Tar(TarIndex),
}

impl Source {
    fn has(&self, rel: &str) -> bool {
        match self {
            Source::Dir(d) => d.join(rel).is_file(),
            Source::Tar(t) => t.contains(rel),
        }
    }

    /// A regular file of the directory, links resolved inside it; never a FIFO or a device.
    fn open_in_dir(dir: &Path, rel: &str, target: &str) -> Result<(std::fs::File, u64), CliError> {
        let io = |e| CliError::Io {
            what: format!("read {rel} of {target}"),
            source: e,
        };
        let real = dir
            .join(hush_oci::layer::safe_relative(rel)?)
            .canonicalize()
            .map_err(io)?;
        let refuse = |reason: &str| {
            CliError::Store(hush_oci::Error::InvalidArchive {
                path: target.into(),
                reason: format!("{rel} {reason}"),
            })
        };
        if !real.starts_with(dir) {
            return Err(refuse("leads out of the directory"));
        }
        if !std::fs::metadata(&real).map_err(io)?.is_file() {
            return Err(refuse("is not a regular file"));
        }
        let f = std::fs::File::open(&real).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        Ok((f, len))
    }

    fn read(&self, rel: &str, target: &str) -> Result<Vec<u8>, CliError> {
        match self {
            Source::Dir(d) => {
                let (f, len) = Self::open_in_dir(d, rel, target)?;
                if len > MAX_DOCUMENT {
                    return Err(CliError::Store(hush_oci::Error::Member {
                        archive: target.into(),
                        member: rel.into(),
                        source: Box::new(hush_oci::Error::TooLarge {
                            limit: MAX_DOCUMENT,
                        }),
                    }));
                }
                let mut out = Vec::new();
                f.take(MAX_DOCUMENT)
                    .read_to_end(&mut out)
                    .map_err(|e| CliError::Io {
                        what: format!("read {rel} of {target}"),
                        source: e,
                    })?;
                Ok(out)
            }
            Source::Tar(t) => Ok(t.read(rel)?),
        }
    }

    fn open_layer(&self, rel: &str, target: &str) -> Result<Box<dyn Read + Send>, CliError> {
        Ok(match self {
            Source::Dir(d) => {
                let (f, _) = Self::open_in_dir(d, rel, target)?;
                let r = hush_oci::archive::decompress(std::io::BufReader::new(f)).map_err(|e| {
                    CliError::Io {
                        what: format!("read {rel} of {target}"),
                        source: e,
                    }
                })?;
                Box::new(Bounded::new(r, UNPACK_LIMIT))
            }
            Source::Tar(t) => t.open_layer(rel, UNPACK_LIMIT)?,
        })
    }
}

/// A docker-archive or an OCI layout.
fn open_layout(src: &Source, target: &str) -> Result<(Vec<u8>, Vec<Layer>), CliError> {
    let bad = |reason: &str| {
        CliError::Store(hush_oci::Error::InvalidArchive {
            path: target.into(),
            reason: reason.into(),
        })
    };
    let (config_rel, layer_rels): (String, Vec<String>) = if src.has("manifest.json") {
        let m: serde_json::Value = serde_json::from_slice(&src.read("manifest.json", target)?)
            .map_err(|_| bad("manifest.json is not JSON"))?;
        let e = &m[0];
        let layers = e["Layers"]
            .as_array()
            .ok_or_else(|| bad("manifest.json has no Layers"))?;
        (
            e["Config"]
                .as_str()
                .ok_or_else(|| bad("manifest.json has no Config"))?
                .to_string(),
            layers
                .iter()
                .filter_map(|l| l.as_str().map(String::from))
                .collect(),
        )
    } else if src.has("index.json") {
        let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        let index: serde_json::Value = serde_json::from_slice(&src.read("index.json", target)?)
            .map_err(|_| bad("index.json is not JSON"))?;
        let md = index["manifests"][0]["digest"]
            .as_str()
            .ok_or_else(|| bad("index.json names no manifest"))?;
        let m: serde_json::Value = serde_json::from_slice(&src.read(&blob(md), target)?)
            .map_err(|_| bad("the manifest is not JSON"))?;
        let cd = m["config"]["digest"]
            .as_str()
            .ok_or_else(|| bad("the manifest has no config"))?;
        let layers = m["layers"]
            .as_array()
            .ok_or_else(|| bad("the manifest has no layers"))?;
        (
            blob(cd),
            layers
                .iter()
                .filter_map(|l| l["digest"].as_str().map(blob))
                .collect(),
        )
    } else {
        return Err(bad(
            "neither a docker-archive (manifest.json) nor an OCI layout (index.json)",
        ));
    };
    let config = src.read(&config_rel, target)?;
    let names = ImageConfig::from_bytes(&config)
        .map(|c| instructions(&c))
        .unwrap_or_default();
    let mut layers = Vec::new();
    for (i, rel) in layer_rels.iter().enumerate() {
        layers.push(Layer {
            instruction: names.get(i).cloned().unwrap_or_default(),
            tar: src.open_layer(rel, target)?,
        });
    }
    Ok((config, layers))
}
