//! `prune`: remove what no image and no cache record needs.

use std::collections::BTreeSet;
use std::fs;

use super::index::IndexLock;
use super::lock::ExclusiveLock;
use super::owner::{self, Sweep, Swept};
use super::{is_untagged_id, remove_tree, Store};
use crate::error::IoContext;
use crate::{Digest, Result};

/// What a prune removed.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Blobs deleted.
    pub blobs: usize,
    /// Snapshots deleted.
    pub snapshots: usize,
    /// Work left in `tmp/` by dead processes (and what of it could not be removed).
    pub swept: Swept,
}

impl Store {
    /// Remove what no image and no cache record needs, and what crashed commands left in `tmp/`.
    /// With `all`, the build cache and the `RUN --mount=type=cache` directories go too.
    ///
    /// Taking `lock` proves that no other hush command uses the store: nothing is being built
    /// on the blobs and snapshots that look unused.
    pub fn prune(&self, _lock: &ExclusiveLock, all: bool) -> Result<Pruned> {
        let _index = IndexLock::take(&self.root)?;
        let cache_dir = self.root.join("cache");
        if all {
            for d in [&cache_dir, &self.cache_mounts_dir()] {
                remove_tree(d)?;
                super::private_dir(d)?;
            }
        }
        // Untagged builds go first, like `docker image prune`.
        let mut idx = self.read_index()?;
        let before = idx.len();
        idx.retain(|k, _| !is_untagged_id(k));
        if idx.len() != before {
            self.write_index(&idx)?;
        }
        let mut keep_blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut keep_snaps: BTreeSet<String> = BTreeSet::new();
        for d in idx.values() {
            let img = self.image_by_manifest(d)?;
            keep_blobs.insert(d.clone());
            keep_blobs.insert(img.config_digest.clone());
            for l in img.layers()? {
                keep_blobs.insert(l.digest);
            }
            for id in &img.config.rootfs.diff_ids {
                keep_blobs.insert(id.clone());
            }
        }
        for e in fs::read_dir(&cache_dir).ctx("read", &cache_dir)? {
            let e = e.ctx("read", &cache_dir)?;
            if let Ok(rec) =
                serde_json::from_slice::<serde_json::Value>(&fs::read(e.path()).unwrap_or_default())
            {
                collect_digests(&rec, &mut keep_blobs);
            }
        }
        // Every kept digest by name: a blob's file and the prefix that names its snapshot.
        let keep_hex: std::collections::HashSet<String> =
            keep_blobs.iter().map(Digest::hex).collect();
        for h in &keep_hex {
            keep_snaps.insert(h[..20].to_string());
        }
        let mut pruned = Pruned::default();
        let blobs = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blobs).ctx("read", &blobs)? {
            let e = e.ctx("read", &blobs)?;
            let name = e.file_name().to_string_lossy().to_string();
            if !keep_hex.contains(&name) {
                fs::remove_file(e.path()).ctx("remove", e.path())?;
                pruned.blobs += 1;
            }
        }
        let snaps = self.root.join("snapshots");
        for e in fs::read_dir(&snaps).ctx("read", &snaps)? {
            let e = e.ctx("read", &snaps)?;
            if !keep_snaps.contains(&e.file_name().to_string_lossy().to_string()) {
                remove_tree(&e.path())?;
                pruned.snapshots += 1;
            }
        }
        // No build waits for a key: their lock files go (they are made again on the next miss).
        let locks = self.root.join(super::lock::LOCKS);
        remove_tree(&locks)?;
        super::private_dir(&locks)?;
        // No other hush runs: anything in tmp/ without a live owner is a leftover, with or
        // without an owner record.
        pruned.swept = owner::sweep(&self.root.join("tmp"), Sweep::Exclusive)?;
        Ok(pruned)
    }
}

fn collect_digests(v: &serde_json::Value, out: &mut BTreeSet<Digest>) {
    match v {
        serde_json::Value::String(s) => {
            if let Ok(d) = s.parse::<Digest>() {
                if s.starts_with("sha256:") {
                    out.insert(d);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_digests(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_digests(x, out)),
        _ => {}
    }
}
