//! `-o/--output` of `hush build` and where `hush save` writes: buildx's output spec read into a
//! typed [`Output`] before the build starts (an unknown type or key is a usage error naming it,
//! never ignored), and each output written by its exporter in `hush_oci::export`, to a file
//! (through a temp file: a failure leaves no half-written output), a directory or standard output.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use hush_oci::export::oci::Compression;
use hush_oci::reference::Reference;
use hush_oci::store::{Image, Store};
use oci_spec::image::Descriptor;

use super::CliError;

/// Where an output's bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dest {
    /// `dest=-`.
    Stdout,
    File(PathBuf),
}

impl Dest {
    pub(crate) fn parse(s: &str) -> Self {
        if s == "-" {
            Dest::Stdout
        } else {
            Dest::File(PathBuf::from(s))
        }
    }
}

/// One `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// `type=image`: the store (the default); `name=` adds names; `push=true` (or
    /// `type=registry`) pushes the image to each name (or each `-t`).
    Image { names: Vec<String>, push: bool },
    /// `type=docker`: a docker-archive.
    Docker { dest: Dest, names: Vec<String> },
    /// `type=docker` without `dest=` (`--load`): the docker-archive piped into `docker load`.
    Load { names: Vec<String> },
    /// `type=oci`: an OCI layout, as a directory or a tar.
    Oci {
        dest: Dest,
        names: Vec<String>,
        tar: bool,
        compression: Compression,
    },
    /// `type=local`: the filesystem into a directory.
    Local { dir: PathBuf },
    /// `type=tar`: the filesystem as a tar.
    Tar { dest: Dest },
}

/// The keys each type takes (besides `type`), in buildx's spelling.
fn keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "image" | "registry" => &["name", "push"],
        "docker" => &["dest", "name"],
        "oci" => &["dest", "name", "tar", "compression"],
        "local" | "tar" => &["dest"],
        _ => return None,
    })
}

impl Output {
    /// Parse one `--output` value: `type=T,key=value,…`, or buildx's shorthands: `-` is
    /// `type=tar,dest=-`, a path `type=local,dest=PATH`.
    pub(crate) fn parse(s: &str) -> Result<Self, CliError> {
        let usage = |m: String| CliError::Usage(format!("invalid --output {s:?}: {m}"));
        if !s.contains('=') {
            return Ok(if s == "-" {
                Output::Tar { dest: Dest::Stdout }
            } else {
                Output::Local { dir: s.into() }
            });
        }
        let mut fields: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for f in s.split(',') {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| usage(format!("{f:?} is not key=value")))?;
            fields.entry(k).or_default().push(v);
        }
        let kind = match fields.remove("type").as_deref() {
            Some([t]) => *t,
            Some(_) => return Err(usage("type= is given more than once".into())),
            None => return Err(usage("it needs type=".into())),
        };
        let allowed = keys(kind).ok_or_else(|| {
            usage(format!(
                "unknown output type {kind:?} (image, registry, docker, oci, local or tar)"
            ))
        })?;
        for (k, v) in &fields {
            if !allowed.contains(k) {
                return Err(usage(format!(
                    "type={kind} takes no key {k:?} (it takes {})",
                    allowed.join(", ")
                )));
            }
            if *k != "name" && v.len() > 1 {
                return Err(usage(format!("{k}= is given more than once")));
            }
        }
        let one = |k: &str| fields.get(k).map(|v| v[0]);
        let names: Vec<String> = fields
            .get("name")
            .into_iter()
            .flatten()
            .map(|n| n.to_string())
            .collect();
        let dest = || {
            one("dest")
                .map(Dest::parse)
                .ok_or_else(|| usage(format!("type={kind} needs dest=")))
        };
        let boolean = |k: &str, default: bool| match one(k) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(usage(format!("{k}={v:?} is neither true nor false"))),
        };
        Ok(match kind {
            // buildx: `type=registry` is `type=image,push=true`.
            "image" | "registry" => Output::Image {
                push: boolean("push", kind == "registry")?,
                names,
            },
            // buildx: without dest=, the image goes to the docker engine (`--load`).
            "docker" if one("dest").is_none() => Output::Load { names },
            "docker" => Output::Docker {
                dest: dest()?,
                names,
            },
            "oci" => {
                let dest = dest()?;
                // hush's default, kept: a directory unless the name ends in `.tar` (or it is
                // standard output); buildx's `tar=` says which.
                let default_tar = match &dest {
                    Dest::Stdout => true,
                    Dest::File(p) => p.extension().is_some_and(|e| e == "tar"),
                };
                let tar = boolean("tar", default_tar)?;
                if !tar && dest == Dest::Stdout {
                    return Err(usage("tar=false cannot write to standard output".into()));
                }
                let compression = match one("compression") {
                    None | Some("gzip") => Compression::Gzip,
                    Some("zstd") => Compression::Zstd,
                    Some("uncompressed") => Compression::None,
                    Some(c) => {
                        return Err(usage(format!(
                            "unknown compression {c:?} (gzip, zstd or uncompressed)"
                        )))
                    }
                };
                Output::Oci {
                    dest,
                    names,
                    tar,
                    compression,
                }
            }
            "local" => {
                match dest()? {
                    Dest::Stdout => return Err(usage(
                        "type=local writes a directory: use type=tar,dest=- for standard output"
                            .into(),
                    )),
                    Dest::File(dir) => Output::Local { dir },
                }
            }
            _ => Output::Tar { dest: dest()? },
        })
    }

    /// Whether it writes to standard output.
    pub(crate) fn to_stdout(&self) -> bool {
        matches!(
            self,
            Output::Docker {
                dest: Dest::Stdout,
                ..
            } | Output::Oci {
                dest: Dest::Stdout,
                ..
            } | Output::Tar { dest: Dest::Stdout }
        )
    }

    /// Write `img` (named `tags` by `-t`). Returns the descriptor of the manifest written, when
    /// it is not the store's (an OCI output with compressed layers): buildx's
    /// `containerimage.digest` names it.
    pub(crate) fn write(
        &self,
        store: &Store,
        img: &Image,
        tags: &[String],
    ) -> Result<Option<Descriptor>, CliError> {
        let with =
            |names: &[String]| -> Vec<String> { tags.iter().chain(names).cloned().collect() };
        match self {
            Output::Image { names, .. } => {
                if !names.is_empty() {
                    let layers = img.layers()?;
                    let config = store.read_blob(&img.config_digest)?;
                    store.put_image_raw(&config, &layers, names)?;
                }
                Ok(None)
            }
            Output::Docker { dest, names } => {
                let names = with(names);
                to_dest(dest, |w| {
                    hush_oci::export::docker::write(store, img, &names, w)
                })?;
                Ok(None)
            }
            Output::Load { names } => {
                super::dockerload::load(store, img, &with(names)).map_err(|err| {
                    CliError::Load {
                        err: Box::new(err),
                        image: tags.first().map_or_else(
                            || img.config_digest.to_string(),
                            |t| Reference::parse(t).map_or_else(|_| t.clone(), |r| r.familiar()),
                        ),
                    }
                })?;
                Ok(None)
            }
            Output::Oci {
                dest,
                names,
                tar,
                compression,
            } => {
                let names = with(names);
                let name = names.first().map(String::as_str);
                let desc = match (tar, dest) {
                    (false, Dest::File(dir)) => {
                        hush_oci::export::oci::write_dir(store, img, name, dir, *compression)?
                    }
                    _ => in_scratch(store, "oci-out", |scratch| {
                        let mut desc = None;
                        to_dest(dest, |w| {
                            desc = Some(hush_oci::export::oci::write_tar(
                                store,
                                img,
                                name,
                                *compression,
                                scratch,
                                w,
                            )?);
                            Ok(())
                        })?;
                        Ok(desc.expect("written"))
                    })?,
                };
                Ok(Some(desc))
            }
            Output::Local { dir } => {
                hush_oci::export::local::write_dir(store, img, dir)?;
                Ok(None)
            }
            Output::Tar { dest } => {
                in_scratch(store, "tar-out", |scratch| {
                    to_dest(dest, |w| {
                        hush_oci::export::local::write_tar(store, img, scratch, w).map(drop)
                    })
                })?;
                Ok(None)
            }
        }
    }
}

/// Run `f` with a scratch directory of the store's `tmp/`, removed after.
fn in_scratch<T>(
    store: &Store,
    prefix: &str,
    f: impl FnOnce(&Path) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let scratch = store.temp_dir(prefix)?;
    let r = f(&scratch);
    hush_oci::store::remove_tree(&scratch)?;
    r
}

/// Write through `write` to standard output, or to a file through a temp file.
pub(crate) fn to_dest(
    dest: &Dest,
    write: impl FnOnce(&mut dyn Write) -> hush_oci::Result<()>,
) -> Result<(), CliError> {
    match dest {
        Dest::Stdout => {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            write(&mut out)?;
            out.flush().map_err(crate::output::stdout_error)
        }
        Dest::File(path) => atomic_file(path, |f| {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            write(&mut w)?;
            w.flush().map_err(|e| CliError::Io {
                what: format!("write {}", path.display()),
                source: e,
            })
        }),
    }
}

/// Write a small file (`--iidfile`, `--metadata-file`) through a temp file.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    atomic_file(path, |f| {
        f.write_all(bytes).map_err(|e| CliError::Io {
            what: format!("write {}", path.display()),
            source: e,
        })
    })
}

/// `--metadata-file`: buildx's keys for an image build. `containerimage.digest` and
/// `containerimage.descriptor` name the manifest an OCI output wrote (`exported`) when there
/// is one, else the store's; `image.name` is the names, comma-separated, when there are any.
pub(crate) fn metadata(
    store: &Store,
    img: &Image,
    exported: Option<&Descriptor>,
    names: &[String],
) -> Result<String, CliError> {
    let descriptor = match exported {
        Some(d) => serde_json::to_value(d).expect("a descriptor serializes"),
        None => {
            let size = store.read_blob(&img.manifest_digest)?.len() as u64;
            serde_json::to_value(hush_oci::image::descriptor(
                oci_spec::image::MediaType::ImageManifest,
                &img.manifest_digest,
                size,
            ))
            .expect("a descriptor serializes")
        }
    };
    let mut m = serde_json::json!({
        "containerimage.config.digest": img.config_digest.to_string(),
        "containerimage.digest": descriptor["digest"],
        "containerimage.descriptor": descriptor,
    });
    if !names.is_empty() {
        m["image.name"] = names.join(",").into();
    }
    Ok(serde_json::to_string_pretty(&m).expect("json"))
}

/// Write to `dest` through a temp file beside it, so a failure leaves no half-written output.
/// A `dest` that is there and is not a regular file (`/dev/null`, `/dev/stdout`, a FIFO) is
/// written as it is: renaming over it would replace the device or the pipe with a file (what
/// `docker save -o /dev/null` does to a machine).
pub(crate) fn atomic_file(
    dest: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<(), CliError>,
) -> Result<(), CliError> {
    if std::fs::metadata(dest).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(dest)
            .map_err(|e| CliError::Io {
                what: format!("open {}", dest.display()),
                source: e,
            })?;
        return write(&mut f);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `-o /dev/null`, `--iidfile /dev/stdout`, a FIFO: written through, never replaced by a
    /// file (a FIFO stands in for a device a test must not risk replacing).
    #[test]
    fn an_output_that_is_no_regular_file_is_written_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // The read end, opened without waiting for a writer, so that a regression fails here
        // rather than hangs.
        let mut reader = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .unwrap()
        };
        write_file(&fifo, b"sha256:0123\n").unwrap();
        let mut got = Vec::new();
        let _ = std::io::Read::read_to_end(&mut reader, &mut got);
        assert_eq!(got, b"sha256:0123\n");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        // A regular file is still replaced whole, through a temp file.
        let file = dir.path().join("iid");
        std::fs::write(&file, b"old").unwrap();
        write_file(&file, b"new").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
    }

    fn ok(s: &str) -> Output {
        Output::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn refused(s: &str) -> String {
        match Output::parse(s) {
            Err(CliError::Usage(m)) => m,
            Err(e) => panic!("{s}: not a usage error: {e}"),
            Ok(o) => panic!("{s}: accepted as {o:?}"),
        }
    }

    #[test]
    fn outputs_parse_as_buildx_reads_them() {
        let file = |p: &str| Dest::File(p.into());
        assert_eq!(
            ok("type=image"),
            Output::Image {
                names: vec![],
                push: false
            }
        );
        let pushed = |n: &str| Output::Image {
            names: vec![n.into()],
            push: true,
        };
        assert_eq!(ok("type=registry,name=r:5000/a:1"), pushed("r:5000/a:1"));
        assert_eq!(
            ok("type=image,name=r:5000/a:1,push=true"),
            pushed("r:5000/a:1")
        );
        assert_eq!(
            ok("type=docker,dest=-"),
            Output::Docker {
                dest: Dest::Stdout,
                names: vec![]
            }
        );
        assert_eq!(ok("type=tar,dest=-"), Output::Tar { dest: Dest::Stdout });
        assert_eq!(
            ok("type=docker,name=a"),
            Output::Load {
                names: vec!["a".into()]
            }
        );
        assert_eq!(ok("-"), Output::Tar { dest: Dest::Stdout });
        assert_eq!(ok("out"), Output::Local { dir: "out".into() });
        let oci = |dest, tar, compression| Output::Oci {
            dest,
            names: vec![],
            tar,
            compression,
        };
        assert_eq!(
            ok("type=oci,dest=-"),
            oci(Dest::Stdout, true, Compression::Gzip)
        );
        assert_eq!(
            ok("type=oci,dest=a.tar"),
            oci(file("a.tar"), true, Compression::Gzip)
        );
        assert_eq!(
            ok("type=oci,dest=dir"),
            oci(file("dir"), false, Compression::Gzip)
        );
        assert_eq!(
            ok("type=oci,dest=dir,tar=true,compression=zstd"),
            oci(file("dir"), true, Compression::Zstd)
        );
        assert_eq!(
            ok("type=docker,dest=a.tar,name=a,name=b:1"),
            Output::Docker {
                dest: file("a.tar"),
                names: vec!["a".into(), "b:1".into()]
            }
        );
    }

    /// Never ignored: an unknown type or key, a bad value, a missing dest — each named.
    #[test]
    fn unknown_types_and_keys_are_usage_errors_naming_them() {
        for (spec, says) in [
            ("type=bogus,dest=x", "\"bogus\""),
            ("type=oci,dest=x,colour=red", "\"colour\""),
            ("type=local,dest=x,compression=gzip", "\"compression\""),
            ("type=docker,dest=x,tar=true", "\"tar\""),
            ("type=oci,dest=x,compression=lz4", "\"lz4\""),
            ("type=oci,dest=x,tar=maybe", "\"maybe\""),
            ("type=oci,dest=-,tar=false", "tar=false"),
            ("type=local,dest=-", "type=tar,dest=-"),
            ("type=tar", "needs dest="),
            ("dest=x", "needs type="),
            ("type=oci,dest=x,dest=y", "dest= is given more than once"),
            ("type=registry,name=x,dest=y", "\"dest\""),
            ("type=image,push=yes", "\"yes\""),
            ("type=oci,dest", "is not key=value"),
        ] {
            let m = refused(spec);
            assert!(m.contains(says), "{spec}: {m}");
        }
    }
}
