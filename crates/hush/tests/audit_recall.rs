//! Audit recall on a planted image: every detector rule's sample is put in every place an image
//! can hold it — a file of a layer, a file a later layer deletes, a build arg recorded in the
//! history, the config's `Env` and `Labels` — and `hush audit` must find each one, with the
//! rule's own id, in the store, in a docker-archive and in an OCI layout tarball.
//! Needs root and busybox-static; skipped otherwise.

mod common;
use common::{busybox_tar, can_run, log, run_in};

#[path = "../../hush-scan/testdata/samples.rs"]
mod samples;

use std::path::Path;
use std::process::Output;

fn run(root: &Path, dir: &Path, args: &[&str]) -> Output {
    run_in(root, args, dir)
}

#[test]
fn every_rule_is_found_in_every_place() {
    if !can_run(&["busybox"]) {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("hush-recall-")
        .tempdir()
        .unwrap();
    let (dir, root) = (tmp.path(), tmp.path().join("root"));
    busybox_tar(&dir.join("busybox.tar"));
    assert!(run(&root, dir, &["import", "busybox.tar", "busybox:local"])
        .status
        .success());
    let samples = samples::samples();
    let ctx = dir.join("ctx");
    for sub in ["planted", "deleted"] {
        std::fs::create_dir_all(ctx.join(sub)).unwrap();
        for (rule, positive, _) in &samples {
            std::fs::write(ctx.join(sub).join(rule), positive).unwrap();
        }
    }
    let mut df = String::from(
        "FROM busybox:local\nCOPY planted/ /planted/\nCOPY deleted/ /deleted/\nRUN rm -rf /deleted\n",
    );
    let mut args: Vec<String> = vec![
        "build".into(),
        "-q".into(),
        "-f".into(),
        "Dockerfile".into(),
        "--leak-check=warn".into(),
        // The planted files are credentials: the lint would stop the build before any step.
        "--lint=warn".into(),
        // Docker's history: every build arg's value, which is how one lands in an image.
        "--history-build-args=all".into(),
        "-t".into(),
        "planted".into(),
        "-o".into(),
        format!("type=docker,dest={}", dir.join("planted.tar").display()),
        "-o".into(),
        format!("type=oci,dest={}", dir.join("planted-oci.tar").display()),
    ];
    for (i, (_, positive, _)) in samples.iter().enumerate() {
        df.push_str(&format!(
            "ARG S_{i}\nENV E_{i}=${{S_{i}}}\nLABEL l_{i}=${{S_{i}}}\n"
        ));
        args.push("--build-arg".into());
        args.push(format!("S_{i}={positive}"));
    }
    df.push_str("RUN true\n");
    std::fs::write(dir.join("Dockerfile"), df).unwrap();
    args.push("ctx".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&root, dir, &args);
    assert!(o.status.success(), "{}", log(&o));

    let inspect: serde_json::Value =
        serde_json::from_slice(&run(&root, dir, &["inspect", "planted"]).stdout).unwrap();
    let env: Vec<String> = inspect[0]["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    for target in ["planted", "planted.tar", "planted-oci.tar"] {
        let o = run(&root, dir, &["audit", "--format", "json", target]);
        assert_eq!(o.status.code(), Some(1), "{target}: {}", log(&o));
        let findings: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        let has = |rule: &str, location: &str, deleted: bool| {
            findings.iter().any(|f| {
                f["rule"] == rule
                    && f["location"] == location
                    && f["deleted_in"].is_null() != deleted
            })
        };
        let mut missed = Vec::new();
        let mut total = 0;
        for (i, (rule, positive, _)) in samples.iter().enumerate() {
            let env_at = env
                .iter()
                .position(|e| e.starts_with(&format!("E_{i}=")))
                .unwrap();
            let history = findings.iter().any(|f| {
                f["rule"] == *rule && f["location"].as_str().unwrap().starts_with("history[")
            });
            for (place, found) in [
                ("layer file", has(rule, &format!("/planted/{rule}"), false)),
                ("deleted file", has(rule, &format!("/deleted/{rule}"), true)),
                (
                    "config Env",
                    has(rule, &format!("config.Env[{env_at}]"), false),
                ),
                (
                    "config Labels",
                    has(rule, &format!("config.Labels[\"l_{i}\"]"), false),
                ),
                ("history build arg", history),
            ] {
                total += 1;
                if !found {
                    missed.push(format!("{rule} in {place}"));
                }
            }
            // Previews are redacted: no whole sample appears in the report.
            assert!(
                !String::from_utf8_lossy(&o.stdout).contains(positive.as_str()),
                "{rule}'s value is in the report"
            );
        }
        eprintln!(
            "audit recall on {target}: {}/{total} ({} rules x 5 places)",
            total - missed.len(),
            samples.len()
        );
        assert!(missed.is_empty(), "{target}: missed {missed:?}");
    }
}
