//! `hush df`: the store's disk use in `docker system df`'s shape (TYPE, TOTAL, ACTIVE, SIZE,
//! RECLAIMABLE), `-v` per item, `--format json`.
//!
//! Images are active when tagged (an untagged build is what `prune` removes); layers when an
//! image or a build-cache record holds them (RECLAIMABLE: what nothing holds, freed by any
//! prune); build-cache records when an image holds their layer too (their SIZE and
//! RECLAIMABLE are what only the cache holds, freed by `prune --all` or `--keep-storage`);
//! cache mounts are all reclaimable by `prune --all`.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hush_oci::store::{Store, Usage};

use super::units::{ago_time, human_size};
use super::CliResult;
use crate::output::outln;

#[derive(Args)]
pub(crate) struct DfArgs {
    /// Show each image, build-cache record and cache mount.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// `table` or `json` (one object per type, sizes in bytes too).
    #[arg(long, value_enum, default_value_t = DfFormat::Table)]
    format: DfFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DfFormat {
    Table,
    Json,
}

/// One summary line.
struct Row {
    kind: &'static str,
    total: usize,
    active: usize,
    size: u64,
    reclaimable: u64,
}

fn rows(u: &Usage) -> [Row; 4] {
    let dangling: u64 = u
        .images
        .iter()
        .filter(|i| i.names.is_empty())
        .map(|i| i.unique)
        .sum();
    [
        Row {
            kind: "Images",
            total: u.images.len(),
            active: u.images.iter().filter(|i| !i.names.is_empty()).count(),
            size: u.image_bytes,
            reclaimable: dangling,
        },
        Row {
            kind: "Layers",
            total: u.layers.count,
            active: u.layers.active,
            size: u.layers.size,
            reclaimable: u.layers.garbage,
        },
        Row {
            kind: "Build Cache",
            total: u.records.len(),
            active: u.records.iter().filter(|r| r.in_image).count(),
            size: u.cache_bytes,
            reclaimable: u.cache_bytes,
        },
        Row {
            kind: "Cache Mounts",
            total: u.mounts.len(),
            active: 0,
            size: u.mounts.iter().map(|m| m.size).sum(),
            reclaimable: u.mounts.iter().map(|m| m.size).sum(),
        },
    ]
}

/// docker's RECLAIMABLE column: `1.2MB (10%)`.
fn reclaimable(r: &Row) -> String {
    let pct = if r.size == 0 {
        0
    } else {
        (r.reclaimable as f64 * 100.0 / r.size as f64).round() as u64
    };
    format!("{} ({pct}%)", human_size(r.reclaimable))
}

pub(crate) fn run(store: &Store, a: DfArgs) -> CliResult {
    let u = store.usage()?;
    let rows = rows(&u);
    if a.format == DfFormat::Json {
        if a.verbose {
            outln!("{}", verbose_json(&u))?;
        } else {
            for r in &rows {
                // docker's keys and strings, and the bytes.
                let v = serde_json::json!({
                    "Type": r.kind,
                    "TotalCount": r.total.to_string(),
                    "Active": r.active.to_string(),
                    "Size": human_size(r.size),
                    "Reclaimable": reclaimable(r),
                    "SizeBytes": r.size,
                    "ReclaimableBytes": r.reclaimable,
                });
                outln!("{v}")?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.verbose {
        return verbose_table(&u);
    }
    outln!(
        "{:<15}{:<10}{:<10}{:<10}RECLAIMABLE",
        "TYPE",
        "TOTAL",
        "ACTIVE",
        "SIZE"
    )?;
    for r in &rows {
        outln!(
            "{:<15}{:<10}{:<10}{:<10}{}",
            r.kind,
            r.total,
            r.active,
            human_size(r.size),
            reclaimable(r)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn names(names: &[String]) -> String {
    if names.is_empty() {
        "<none>".into()
    } else {
        names
            .iter()
            .map(|n| super::image::familiar(n))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn verbose_table(u: &Usage) -> CliResult {
    outln!("Images space usage:\n")?;
    outln!(
        "{:<40}{:<15}{:<12}{:<13}UNIQUE SIZE",
        "NAMES",
        "IMAGE ID",
        "SIZE",
        "SHARED SIZE"
    )?;
    for i in &u.images {
        outln!(
            "{:<40}{:<15}{:<12}{:<13}{}",
            names(&i.names),
            i.id.short(),
            human_size(i.size),
            human_size(i.size - i.unique),
            human_size(i.unique)
        )?;
    }
    outln!("\nBuild cache usage: {}\n", human_size(u.cache_bytes))?;
    outln!(
        "{:<15}{:<12}{:<22}IN AN IMAGE",
        "CACHE ID",
        "SIZE",
        "LAST USED"
    )?;
    let mut records: Vec<_> = u.records.iter().collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.last_used));
    for r in records {
        outln!(
            "{:<15}{:<12}{:<22}{}",
            &r.key[..12],
            human_size(r.size),
            ago_time(r.last_used),
            r.in_image
        )?;
    }
    outln!("\nCache mounts space usage:\n")?;
    outln!("{:<40}{:<12}LAST USED", "CACHE MOUNT", "SIZE")?;
    for m in &u.mounts {
        outln!(
            "{:<40}{:<12}{}",
            m.name,
            human_size(m.size),
            ago_time(m.last_used)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn verbose_json(u: &Usage) -> serde_json::Value {
    serde_json::json!({
        "Images": u.images.iter().map(|i| serde_json::json!({
            "Names": i.names,
            "ID": i.id.to_string(),
            "Size": i.size,
            "SharedSize": i.size - i.unique,
            "UniqueSize": i.unique,
        })).collect::<Vec<_>>(),
        "Layers": {
            "TotalCount": u.layers.count,
            "Active": u.layers.active,
            "Size": u.layers.size,
            "Reclaimable": u.layers.garbage,
        },
        "BuildCache": u.records.iter().map(|r| serde_json::json!({
            "ID": r.key,
            "Size": r.size,
            "LastUsedAt": unix(r.last_used),
            "InImage": r.in_image,
        })).collect::<Vec<_>>(),
        "CacheMounts": u.mounts.iter().map(|m| serde_json::json!({
            "Name": m.name,
            "Size": m.size,
            "LastUsedAt": unix(m.last_used),
        })).collect::<Vec<_>>(),
    })
}
