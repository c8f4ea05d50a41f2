//! The image's filesystem: into a directory (buildx's `type=local`) or as one tar (`type=tar`).
//! Its layers are applied bottom first with the layer-apply code (every path resolved inside
//! the destination, whiteouts deleting what they name), nothing mounted, nothing run.

use std::io::Write;
use std::path::Path;

use crate::error::IoContext;
use crate::store::{Image, Store};
use crate::Result;

/// Apply `img`'s layers into `dest` (made if missing; what it holds is overwritten where the
/// image has the same paths, as buildx's local exporter does).
pub fn write_dir(store: &Store, img: &Image, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).ctx("create", dest)?;
    for (l, diff_id) in img.layers()?.iter().zip(&img.config.rootfs.diff_ids) {
        // In a snapshot a whiteout is a 0/0 device: a `.wh.` name there is a file of the image
        // (what BuildKit's local exporter, which copies the snapshot, gives too).
        let snap = store.snapshot_dir(diff_id);
        let literal = |rel: &Path| std::fs::symlink_metadata(snap.join(rel)).is_ok();
        // The store's layers were checked when they entered it: no limit but the disk.
        crate::layer::apply_layer_flat(store.open_layer(l)?, dest, u64::MAX, &literal)?;
    }
    Ok(())
}

/// Write `img`'s filesystem as a tar to `out`: applied into `scratch` (a directory of the
/// store's `tmp/`, which the caller removes), then written in the order and with the metadata
/// (owners, modes, times, hard links, extended attributes) of a layer; a character device 0/0,
/// which is overlayfs' whiteout and no real device, would be written as a whiteout.
pub fn write_tar<W: Write>(store: &Store, img: &Image, scratch: &Path, out: W) -> Result<W> {
    let root = scratch.join("rootfs");
    write_dir(store, img, &root)?;
    let mut out = crate::layer::write_layer_parallel(&root, None, out)?;
    out.flush().ctx("write", "the filesystem tar")?;
    Ok(out)
}
