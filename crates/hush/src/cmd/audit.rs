//! `hush audit TARGET`: what an image gives away — known secret values (`--secret`, the same
//! forms as the leak guard) and credentials recognised by the detector rules, in every layer
//! (deleted files included) and in the config and history.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hush_oci::store::Store;
use hush_scan::audit::Finding;

use super::CliResult;
use crate::output::{errln, outln};

#[derive(Args)]
pub(crate) struct AuditArgs {
    /// An image in the store, a docker-archive (`docker save`), an OCI layout (dir or tar), `-`
    /// for an archive on standard input, or a registry reference the store lacks (its layers
    /// streamed and scanned, nothing stored unless --keep).
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
    #[command(flatten)]
    remote: super::scan::RemoteArgs,
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

pub(crate) fn run(store: &Store, a: AuditArgs) -> CliResult {
    let guard = super::scan::guard(&a.secrets, a.min_len)?;
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
    let remote = a.remote.remote()?;
    let tmp = store.temp_dir("audit")?;
    let result = super::scan::open(store, &a.target, &tmp, &remote).and_then(|source| {
        let img = super::scan::first_image(&*source, &a.target);
        super::scan::audit_image(&*source, img, &a.target, &guard, &rules)
    });
    let _ = std::fs::remove_dir_all(&tmp);
    let (mut findings, _) = result?;
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
