//! `hush audit`: what an image gives away. Every layer's files — including files a later layer
//! deletes or overwrites, which are still in the image — and the config (env, labels, command,
//! healthcheck, history) are checked for the given secrets' values and by the detector rules.

use std::collections::BTreeSet;
use std::io::Read;

use serde::Serialize;

use crate::rules::{preview, Rules};
use crate::Guard;

/// Files larger than this are scanned in windows (with overlap) instead of whole.
const WINDOW: usize = 8 << 20;
const OVERLAP: usize = 4096;

/// One finding.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// Layer index (bottom = 0), or none for the config.
    pub layer: Option<usize>,
    /// The instruction that made the layer (history `created_by`).
    pub instruction: String,
    /// Path inside the layer, or the config field.
    pub location: String,
    /// The rule id, or `secret:<id> (<form>)` for a known value.
    pub rule: String,
    /// A redacted preview (never the whole value).
    pub preview: String,
    /// The layer that deletes or overwrites the file, when one does.
    pub deleted_in: Option<usize>,
}

/// A layer to audit: the instruction that made it and its uncompressed tar.
pub struct Layer {
    /// History `created_by`.
    pub instruction: String,
    /// The tar stream.
    pub tar: Box<dyn Read>,
}

/// Audit layers (bottom first) and a config blob.
pub fn audit(
    layers: Vec<Layer>,
    config: &[u8],
    guard: &Guard,
    rules: &Rules,
) -> std::io::Result<Vec<Finding>> {
    let mut findings = Vec::new();
    // Per layer: the paths it writes, deletes, and the directories it makes opaque.
    let mut written: Vec<BTreeSet<String>> = Vec::new();
    let mut deleted: Vec<BTreeSet<String>> = Vec::new();
    for (i, layer) in layers.into_iter().enumerate() {
        let mut w = BTreeSet::new();
        let mut d = BTreeSet::new();
        let mut ar = tar::Archive::new(layer.tar);
        for entry in ar.entries()? {
            let mut entry = entry?;
            let path = String::from_utf8_lossy(&entry.path_bytes())
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            if name == ".wh..wh..opq" {
                d.insert(format!("{dir}/"));
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                d.insert(if dir.is_empty() {
                    hidden.to_string()
                } else {
                    format!("{dir}/{hidden}")
                });
                continue;
            }
            w.insert(path.clone());
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let mut offset = 0usize;
            let mut carry: Vec<u8> = Vec::new();
            loop {
                let mut buf = std::mem::take(&mut carry);
                let start = buf.len();
                buf.resize(start + WINDOW, 0);
                let mut got = start;
                while got < buf.len() {
                    let n = entry.read(&mut buf[got..])?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                buf.truncate(got);
                let base = offset.saturating_sub(start);
                for h in guard.scan_bytes(&path, &buf) {
                    findings.push(Finding {
                        layer: Some(i),
                        instruction: layer.instruction.clone(),
                        location: format!("/{path}"),
                        rule: format!("secret:{} ({})", h.form.secret_id, h.form.form),
                        preview: format!("byte {}", base as u64 + h.offset),
                        deleted_in: None,
                    });
                }
                for h in rules.scan(&buf) {
                    if start > 0 && h.offset < start {
                        continue; // seen in the previous window
                    }
                    findings.push(Finding {
                        layer: Some(i),
                        instruction: layer.instruction.clone(),
                        location: format!("/{path}"),
                        rule: h.rule.to_string(),
                        preview: h.preview,
                        deleted_in: None,
                    });
                }
                if got < start + WINDOW {
                    break;
                }
                offset += got - start;
                carry = buf[buf.len().saturating_sub(OVERLAP)..].to_vec();
            }
        }
        written.push(w);
        deleted.push(d);
    }
    // Which later layer hides each file.
    for f in &mut findings {
        let Some(i) = f.layer else { continue };
        let p = f.location.trim_start_matches('/').to_string();
        f.deleted_in = (i + 1..written.len()).find(|&j| {
            written[j].contains(&p)
                || deleted[j].iter().any(|d| {
                    p == *d
                        || (d.ends_with('/') && p.starts_with(d.as_str()))
                        || p.starts_with(&format!("{d}/"))
                })
        });
    }
    findings.extend(audit_config(config, guard, rules));
    Ok(findings)
}

fn audit_config(config: &[u8], guard: &Guard, rules: &Rules) -> Vec<Finding> {
    let mut out = Vec::new();
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(config) else {
        return out;
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let c = &v["config"];
    for (name, val) in [
        ("Env", &c["Env"]),
        ("Cmd", &c["Cmd"]),
        ("Entrypoint", &c["Entrypoint"]),
        ("Healthcheck.Test", &c["Healthcheck"]["Test"]),
    ] {
        if let Some(a) = val.as_array() {
            for (k, s) in a.iter().enumerate() {
                fields.push((
                    format!("config.{name}[{k}]"),
                    s.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    if let Some(labels) = c["Labels"].as_object() {
        for (k, s) in labels {
            fields.push((
                format!("config.Labels[{k:?}]"),
                format!("{k}={}", s.as_str().unwrap_or_default()),
            ));
        }
    }
    if let Some(h) = v["history"].as_array() {
        for (k, e) in h.iter().enumerate() {
            if let Some(s) = e["created_by"].as_str() {
                fields.push((format!("history[{k}].created_by"), s.to_string()));
            }
        }
    }
    for (location, text) in fields {
        for h in guard.scan_bytes(&location, text.as_bytes()) {
            out.push(Finding {
                layer: None,
                instruction: String::new(),
                location: location.clone(),
                rule: format!("secret:{} ({})", h.form.secret_id, h.form.form),
                preview: preview(b"********"),
                deleted_in: None,
            });
        }
        for h in rules.scan(text.as_bytes()) {
            out.push(Finding {
                layer: None,
                instruction: String::new(),
                location: location.clone(),
                rule: h.rule.into(),
                preview: h.preview,
                deleted_in: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Box<dyn Read> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, p, *data).unwrap();
        }
        Box::new(std::io::Cursor::new(b.into_inner().unwrap()))
    }

    #[test]
    fn finds_values_in_deleted_files_and_config() {
        let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
        let layers = vec![
            Layer {
                instruction: "COPY secrets.txt /app/".into(),
                tar: tar_of(&[("app/secrets.txt", b"pw=hunter2-correct-horse\n")]),
            },
            Layer {
                instruction: "RUN rm /app/secrets.txt".into(),
                tar: tar_of(&[("app/.wh.secrets.txt", b"")]),
            },
            Layer {
                instruction: "COPY tok /tok".into(),
                tar: tar_of(&[("tok", token.as_bytes())]),
            },
        ];
        let config = serde_json::json!({"config": {"Env": ["PATH=/bin", format!("TOKEN={token}")]}, "history": []});
        let guard = Guard::new(
            [("pw", &b"hunter2-correct-horse"[..])],
            crate::DEFAULT_MIN_LEN,
        );
        let f = audit(layers, config.to_string().as_bytes(), &guard, &Rules::new()).unwrap();
        let secret = f.iter().find(|x| x.rule.starts_with("secret:pw")).unwrap();
        assert_eq!(
            (secret.layer, secret.location.as_str(), secret.deleted_in),
            (Some(0), "/app/secrets.txt", Some(1))
        );
        assert!(f
            .iter()
            .any(|x| x.rule == "github-token" && x.layer == Some(2) && x.deleted_in.is_none()));
        assert!(f
            .iter()
            .any(|x| x.rule == "github-token" && x.location == "config.Env[1]"));
        assert!(f
            .iter()
            .all(|x| !x.preview.contains("hunter2") && !x.preview.contains(&token)));
    }
}
