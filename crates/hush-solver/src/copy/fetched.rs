//! ADD's fetched sources into the destination: a downloaded file as a file (named after its
//! URL when the destination is a directory), a Git checkout's contents into the destination
//! directory, as BuildKit's `llb.Copy` of its HTTP and Git sources places them. Owned by root
//! unless `--chown`; `--chmod` applies; a download is unpacked only with `--unpack=true`.

use std::fs;

use super::{exists, is_archive, CopyReq, Writer};
use crate::error::IoContext;
use crate::fetch::Fetched;
use crate::Result;

/// Copy `fetched` into `req.dest`; `total` is how many sources the ADD has in all.
pub(crate) fn copy_fetched(req: &CopyReq<'_>, fetched: &[Fetched], total: usize) -> Result<()> {
    let chmod = req.chmod.and_then(super::parse_chmod);
    let owned = CopyReq {
        owner: Some(req.owner.unwrap_or((0, 0))),
        from_context: false,
        exclude: &[],
        ..*req
    };
    let w = Writer { req: &owned, chmod };
    let dest_is_dir =
        req.dest.ends_with('/') || total > 1 || scoped_is_dir(req) || req.dest.is_empty();
    let dest = req.dest.trim_end_matches('/');
    for f in fetched {
        match &f.file {
            None => {
                let top = w.mkdir_p(if dest.is_empty() { "/" } else { dest })?;
                w.copy_tree(&f.dir, "", &top, None)?;
            }
            Some(name) => {
                let src = f.dir.join(name);
                let m = fs::symlink_metadata(&src).ctx("stat", &src)?;
                if req.unpack == Some(true) && is_archive(&src) {
                    let top = w.mkdir_p(if dest.is_empty() { "/" } else { dest })?;
                    let reader = hush_oci::archive::open_maybe_compressed(&src)?;
                    hush_oci::layer::extract_archive(reader, &top, req.max_unpack)?;
                    continue;
                }
                let target = if dest_is_dir {
                    format!("{dest}/{name}")
                } else {
                    dest.to_string()
                };
                let dst = w.dest_path(&target)?;
                w.copy_entry(&src, &m, &dst)?;
            }
        }
    }
    Ok(())
}

fn scoped_is_dir(req: &CopyReq<'_>) -> bool {
    exists(req.dest_root, req.dest)
        && hush_sandbox::rootfs::scoped_join(req.dest_root, req.dest, true)
            .is_ok_and(|p| p.is_dir())
}
