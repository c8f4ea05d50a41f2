//! Extended attributes survive a layer's whole life: a RUN sets `security.capability` (what
//! `setcap` writes, as Debian's `iputils-ping` install script does) and `user.*`; the exported
//! image's layer carries them as PAX `SCHILY.xattr.*` records, as docker's does; a later stage
//! FROM the image sees them, in the store that built it and in another store that loaded the
//! export. Needs root, busybox-static and gcc with a static libc (for the probe: busybox has no
//! `setfattr`).

mod common;
use common::{busybox_tar, can_run, compile, log, run_in};

use std::io::Read;
use std::path::Path;

/// `cap_net_bind_service=+ep`: a version 2 `vfs_cap_data`.
const CAP: &str = "0100000200040000000000000000000000000000";

fn store(dir: &Path, name: &str) -> std::path::PathBuf {
    let root = dir.join(name);
    let o = run_in(&root, &["import", "busybox.tar", "busybox:local"], dir);
    assert!(o.status.success(), "{}", log(&o));
    root
}

/// The PAX `SCHILY.xattr.*` records of `want_path` in any layer of a docker-archive.
fn xattrs_in_archive(archive: &Path, want_path: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut outer = hush_oci::tar::Archive::new(std::fs::File::open(archive).unwrap());
    for member in outer.entries().unwrap() {
        let mut member = member.unwrap();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).unwrap();
        let mut layer = hush_oci::tar::Archive::new(&bytes[..]);
        let Ok(entries) = layer.entries() else {
            continue;
        };
        for e in entries {
            let Ok(mut e) = e else { break };
            if e.path()
                .map(|p| p.to_string_lossy() != want_path)
                .unwrap_or(true)
            {
                continue;
            }
            for x in e.pax_extensions().unwrap().into_iter().flatten() {
                let x = x.unwrap();
                let hex: String = x.value_bytes().iter().map(|b| format!("{b:02x}")).collect();
                found.push((x.key().unwrap().to_string(), hex));
            }
        }
    }
    found
}

#[test]
fn capabilities_and_user_xattrs_survive_commit_export_load_and_from() {
    if !can_run(&["busybox", "gcc"]) {
        return;
    }
    let t = tempfile::Builder::new()
        .prefix("hush-xattrs-")
        .tempdir()
        .unwrap();
    let dir = t.path();
    busybox_tar(&dir.join("busybox.tar"));
    let ctx = dir.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    compile("probes/xattr.c", &ctx, &["-static", "-O1"]);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM busybox:local\n\
             COPY xattr /bin/xattr\n\
             RUN echo ping > /bin/pinger && chmod 755 /bin/pinger \
              && xattr set /bin/pinger security.capability {CAP} \
              && xattr set /bin/pinger user.foo 626172 \
              && mkdir /d && xattr set /d user.dir 6464\n"
        ),
    )
    .unwrap();
    let check = "FROM xa\n\
                 RUN xattr get /bin/pinger security.capability; xattr get /bin/pinger user.foo; \
                 xattr get /d user.dir\n";
    std::fs::write(ctx.join("Dockerfile.check"), check).unwrap();
    let want = [
        format!("security.capability={CAP}"),
        "user.foo=626172".to_string(),
        "user.dir=6464".to_string(),
    ];
    let sees_them = |root: &Path, what: &str| {
        let o = run_in(
            root,
            &[
                "build",
                "--progress=plain",
                "-f",
                "ctx/Dockerfile.check",
                "ctx",
            ],
            dir,
        );
        let l = log(&o);
        assert!(o.status.success(), "{what}: {l}");
        for w in &want {
            assert!(l.contains(w.as_str()), "{what}: no {w} in\n{l}");
        }
    };

    let a = store(dir, "a");
    let o = run_in(
        &a,
        &[
            "build",
            "--progress=plain",
            "-t",
            "xa",
            "-o",
            "type=docker,dest=xa.tar",
            "ctx",
        ],
        dir,
    );
    assert!(o.status.success(), "{}", log(&o));
    sees_them(&a, "FROM the built image");

    let pax = xattrs_in_archive(&dir.join("xa.tar"), "bin/pinger");
    assert_eq!(
        pax,
        [
            (
                "SCHILY.xattr.security.capability".to_string(),
                CAP.to_string()
            ),
            ("SCHILY.xattr.user.foo".to_string(), "626172".to_string()),
        ],
        "the exported layer's records for bin/pinger"
    );
    assert_eq!(
        xattrs_in_archive(&dir.join("xa.tar"), "d/"),
        [("SCHILY.xattr.user.dir".to_string(), "6464".to_string())]
    );

    let b = store(dir, "b");
    let o = run_in(&b, &["load", "-i", "xa.tar"], dir);
    assert!(o.status.success(), "{}", log(&o));
    sees_them(&b, "FROM the loaded image");
}

/// A secret copied into an extended attribute is a leak like any other: the build fails and
/// names the file and the attribute, never the value.
#[test]
fn a_secret_in_an_xattr_is_a_leak() {
    if !can_run(&["busybox", "gcc"]) {
        return;
    }
    let t = tempfile::Builder::new()
        .prefix("hush-xattrs-")
        .tempdir()
        .unwrap();
    let dir = t.path();
    busybox_tar(&dir.join("busybox.tar"));
    let ctx = dir.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    compile("probes/xattr.c", &ctx, &["-static", "-O1"]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:local\n\
         COPY xattr /bin/xattr\n\
         RUN --mount=type=secret,id=s touch /f \
          && xattr set /f user.s $(od -An -tx1 /run/secrets/s | tr -d ' \\n')\n",
    )
    .unwrap();
    let value = "xattr-hidden-password-0451";
    std::fs::write(dir.join("s.txt"), value).unwrap();
    let a = store(dir, "a");
    let o = run_in(
        &a,
        &[
            "build",
            "--progress=plain",
            "--secret",
            "id=s,src=s.txt",
            "ctx",
        ],
        dir,
    );
    let l = log(&o);
    assert!(!o.status.success(), "{l}");
    assert!(l.contains("secret leaked into layer"), "{l}");
    assert!(l.contains("/f (xattr user.s)"), "{l}");
    assert!(!l.contains(value), "{l}");
}
