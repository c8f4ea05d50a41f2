//! `hush images`: the images in the store as `docker images` lists them — a row per name
//! (REPOSITORY and TAG in docker's familiar form: `ubuntu`, not `docker.io/library/ubuntu`),
//! `<none>` for untagged builds, newest first — with `-q`, `--digests`, `--no-trunc` and
//! `--format`.

use std::process::ExitCode;

use clap::Args;
use hush_oci::reference::Reference;
use hush_oci::store::{is_untagged_id, Image, Store};

use super::image::Sizes;
use super::template::{Field, Row, Template};
use super::units::{ago, human_size, human_size_precision};
use super::CliResult;
use crate::output::outln;

#[derive(Args)]
pub(crate) struct ImagesArgs {
    /// Only show image ids.
    #[arg(short, long)]
    quiet: bool,
    /// Show digests: the manifest digest, which `NAME@DIGEST` finds.
    #[arg(long)]
    digests: bool,
    /// Show full image ids.
    #[arg(long)]
    no_trunc: bool,
    /// `table`, `json` (one object per line, docker's keys), `table TEMPLATE` or `TEMPLATE`:
    /// text with `{{.Repository}}`, `{{.Tag}}`, `{{.ID}}`, `{{.Digest}}`, `{{.CreatedSince}}`,
    /// `{{.CreatedAt}}`, `{{.Size}}`, … and `{{json .}}`.
    #[arg(long)]
    format: Option<String>,
}

/// The fields of a row, as `docker images --format` names them, with their headers.
const FIELDS: &[Field] = &[
    ("Containers", "CONTAINERS"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("SharedSize", "SHARED SIZE"),
    ("Size", "SIZE"),
    ("Tag", "TAG"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

pub(crate) fn run(store: &Store, a: ImagesArgs) -> CliResult {
    let default = if a.digests {
        "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let format = match (&a.format, a.quiet) {
        (Some(f), _) => f.as_str(),
        (None, true) => "{{.ID}}",
        (None, false) => "table",
    };
    let template = Template::parse(format, default, FIELDS)?;
    let mut sizes = Sizes::new(store);
    let mut listed = Vec::new();
    let names = store.list()?.into_iter();
    let untagged = store.dangling()?.into_iter().map(|d| (d.to_string(), d));
    for (key, d) in names.chain(untagged) {
        let img = store.image_by_manifest(&d)?;
        let created = img
            .config
            .created
            .as_deref()
            .and_then(hush_oci::image::parse_rfc3339);
        let row = row(&key, &img, sizes.image(&img)?, a.no_trunc);
        listed.push((created, row));
    }
    // Newest first, as docker lists them; then by name.
    listed.sort_by(|(c1, r1), (c2, r2)| {
        c2.cmp(c1)
            .then_with(|| (&r1["Repository"], &r1["Tag"]).cmp(&(&r2["Repository"], &r2["Tag"])))
    });
    let rows: Vec<Row> = listed.into_iter().map(|(_, r)| r).collect();
    for line in template.render(&rows) {
        outln!("{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The row of an index key (a canonical name, or an untagged image's id).
fn row(key: &str, img: &Image, size: u64, no_trunc: bool) -> Row {
    let (repository, tag) = repository_and_tag(key);
    let created = img.config.created.as_deref();
    let id = if no_trunc {
        img.config_digest.to_string()
    } else {
        img.config_digest.short()
    };
    Row::from([
        ("Containers", "N/A".into()),
        ("CreatedAt", created_at(created)),
        ("CreatedSince", ago(created)),
        ("Digest", img.manifest_digest.to_string()),
        ("ID", id),
        ("Repository", repository),
        ("SharedSize", "N/A".into()),
        ("Size", human_size(size)),
        ("Tag", tag),
        ("UniqueSize", "N/A".into()),
        // docker's `units.HumanSize`: four significant digits.
        ("VirtualSize", human_size_precision(size, 4)),
    ])
}

/// REPOSITORY and TAG as docker shows them: the familiar name and the tag, `<none>` for what
/// is missing (an untagged image, a name pinned by digest only).
fn repository_and_tag(key: &str) -> (String, String) {
    let none = || "<none>".to_string();
    if is_untagged_id(key) {
        return (none(), none());
    }
    match Reference::parse(key) {
        Ok(r) => (r.familiar_name(), r.tag().map_or_else(none, str::to_string)),
        // A name an older hush kept that is no valid reference: shown as it was written.
        Err(_) => match key.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((repo, tag)) => (repo.into(), tag.into()),
            None => (key.into(), none()),
        },
    }
}

/// `CreatedAt` as docker prints it (Go's `time.Time.String()`, here in UTC):
/// `2024-01-10 12:00:00 +0000 UTC`.
fn created_at(created: Option<&str>) -> String {
    match created.and_then(hush_oci::image::parse_rfc3339) {
        Some(t) => {
            let s = hush_oci::image::rfc3339(t);
            format!(
                "{} +0000 UTC",
                s.trim_end_matches('Z').replacen('T', " ", 1)
            )
        }
        None => "N/A".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_show_as_docker_shows_them() {
        for (key, repo, tag) in [
            ("docker.io/library/ubuntu:22.04", "ubuntu", "22.04"),
            ("docker.io/team/app:1", "team/app", "1"),
            ("docker.io/library/a/b:latest", "library/a/b", "latest"),
            ("localhost:5000/app:latest", "localhost:5000/app", "latest"),
            (
                "docker.io/library/app@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "app",
                "<none>",
            ),
            (
                "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "<none>",
                "<none>",
            ),
            ("MyApp:latest", "MyApp", "latest"),
        ] {
            assert_eq!(
                repository_and_tag(key),
                (repo.to_string(), tag.to_string()),
                "{key}"
            );
        }
    }

    #[test]
    fn created_at_is_gos_time_string() {
        assert_eq!(
            created_at(Some("2024-01-10T12:34:56.123456789Z")),
            "2024-01-10 12:34:56 +0000 UTC"
        );
        assert_eq!(created_at(None), "N/A");
    }
}
