//! `prune`: remove what no image and no cache record needs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::{Duration, SystemTime};

use super::index::IndexLock;
use super::lock::ExclusiveLock;
use super::owner::{self, Sweep, Swept};
use super::usage::{Mount, Record, Scan};
use super::{is_untagged_id, remove_tree, Store};
use crate::error::IoContext;
use crate::{Digest, Result};

/// What a prune removes beyond what nothing holds (buildx's `prune` flags).
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// `--all`: the build cache and the `RUN --mount=type=cache` directories too.
    pub all: bool,
    /// `--filter until=D`: only build-cache records (and with `all`, cache mounts) that no
    /// build has used for longer than `D`.
    pub until: Option<Duration>,
    /// `--keep-storage`: remove build-cache records (and with `all`, cache mounts) least
    /// recently used first, only until the store holds at most this many bytes.
    pub keep_storage: Option<u64>,
    /// Keep untagged builds (a plain prune removes them first, as `docker image prune`): the
    /// store's size limit, enforced at the end of a build, must not take that build's image.
    pub keep_untagged: bool,
}

impl PruneOptions {
    /// Does it remove build-cache records at all (a plain prune keeps them)?
    fn touches_cache(&self) -> bool {
        self.all || self.until.is_some() || self.keep_storage.is_some()
    }
}

/// What a prune removed.
#[derive(Debug, Default)]
pub struct Pruned {
    /// Blobs deleted.
    pub blobs: usize,
    /// Snapshots deleted.
    pub snapshots: usize,
    /// Build-cache records deleted.
    pub records: usize,
    /// Cache mounts deleted.
    pub mounts: usize,
    /// Bytes given back (blobs, snapshots, cache mounts).
    pub reclaimed: u64,
    /// Bytes the store holds afterwards.
    pub remaining: u64,
    /// Work left in `tmp/` by dead processes (and what of it could not be removed).
    pub swept: Swept,
}

/// A record or a cache mount that a prune may remove.
enum Victim<'s> {
    Record(&'s Record),
    Mount(&'s Mount),
}

impl Victim<'_> {
    fn last_used(&self) -> SystemTime {
        match self {
            Victim::Record(r) => r.last_used,
            Victim::Mount(m) => m.usage.last_used,
        }
    }
}

impl Store {
    /// Remove what no image and no cache record needs, and what crashed commands left in `tmp/`;
    /// and as `opts` says, build-cache records and cache mounts (least recently used first,
    /// as BuildKit's prune with `keep-storage`). Images are never removed, except untagged
    /// builds (as `docker image prune`).
    ///
    /// Taking `lock` proves that no other hush command uses the store: nothing is being built
    /// on the blobs and snapshots that look unused, and no running build uses a record.
    pub fn prune(&self, _lock: &ExclusiveLock, opts: &PruneOptions) -> Result<Pruned> {
        let _index = IndexLock::take(&self.root)?;
        // Untagged builds go first, like `docker image prune`.
        if !opts.keep_untagged {
            let mut idx = self.read_index()?;
            let before = idx.len();
            idx.retain(|k, _| !is_untagged_id(k));
            if idx.len() != before {
                self.write_index(&idx)?;
            }
        }
        let scan = self.scan()?;
        let image_units = scan.image_units();
        let mut pruned = Pruned::default();
        let victims = choose(&scan, &image_units, opts);
        let mut gone: BTreeSet<&str> = BTreeSet::new();
        for v in &victims {
            match v {
                Victim::Record(r) => {
                    fs::remove_file(&r.path).ctx("remove", &r.path)?;
                    gone.insert(&r.key);
                    pruned.records += 1;
                }
                Victim::Mount(m) => {
                    remove_tree(&m.dir)?;
                    let _ = fs::remove_file(&m.lock);
                    pruned.mounts += 1;
                    pruned.reclaimed += m.usage.size;
                }
            }
        }
        let keep: BTreeSet<&String> = image_units
            .iter()
            .chain(
                scan.records
                    .iter()
                    .filter(|r| !gone.contains(r.key.as_str()))
                    .flat_map(|r| &r.units),
            )
            .collect();
        let held = |name: &str| keep.contains(&name.chars().take(20).collect::<String>());
        let mut removed_units: BTreeSet<String> = BTreeSet::new();
        let blobs = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blobs).ctx("read", &blobs)? {
            let e = e.ctx("read", &blobs)?;
            let name = e.file_name().to_string_lossy().to_string();
            if !held(&name) {
                fs::remove_file(e.path()).ctx("remove", e.path())?;
                removed_units.insert(name.chars().take(20).collect());
                pruned.blobs += 1;
            }
        }
        let snaps = self.root.join("snapshots");
        for e in fs::read_dir(&snaps).ctx("read", &snaps)? {
            let e = e.ctx("read", &snaps)?;
            let name = e.file_name().to_string_lossy().to_string();
            if !held(&name) {
                remove_tree(&e.path())?;
                removed_units.insert(name);
                pruned.snapshots += 1;
            }
        }
        pruned.reclaimed += scan.size_of(&removed_units);
        let kept_mounts: u64 = scan
            .mounts
            .iter()
            .map(|m| m.usage.size)
            .sum::<u64>()
            .saturating_sub(
                victims
                    .iter()
                    .map(|v| match v {
                        Victim::Mount(m) => m.usage.size,
                        Victim::Record(_) => 0,
                    })
                    .sum(),
            );
        pruned.remaining = scan
            .units
            .iter()
            .filter(|(u, _)| !removed_units.contains(*u))
            .map(|(_, n)| n)
            .sum::<u64>()
            + kept_mounts;
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

/// The records and cache mounts `opts` removes, least recently used first.
fn choose<'s>(
    scan: &'s Scan,
    image_units: &BTreeSet<String>,
    opts: &PruneOptions,
) -> Vec<Victim<'s>> {
    if !opts.touches_cache() {
        return Vec::new();
    }
    let cutoff = opts.until.map(|d| {
        SystemTime::now()
            .checked_sub(d)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    });
    let old_enough = |t: SystemTime| cutoff.is_none_or(|c| t < c);
    let mut candidates: Vec<Victim<'s>> = scan
        .records
        .iter()
        .filter(|r| old_enough(r.last_used))
        .map(Victim::Record)
        .chain(
            scan.mounts
                .iter()
                .filter(|m| opts.all && old_enough(m.usage.last_used))
                .map(Victim::Mount),
        )
        .collect();
    candidates.sort_by_key(Victim::last_used);
    let Some(keep) = opts.keep_storage else {
        return candidates;
    };
    // How many records hold each unit that no image holds: the unit goes with the last one.
    let mut holders: BTreeMap<&String, usize> = BTreeMap::new();
    for r in &scan.records {
        for u in r.units.iter().filter(|u| !image_units.contains(*u)) {
            *holders.entry(u).or_default() += 1;
        }
    }
    let mut total = scan.size_of(image_units.iter().chain(holders.keys().copied()))
        + scan.mounts.iter().map(|m| m.usage.size).sum::<u64>();
    let mut chosen = Vec::new();
    for v in candidates {
        if total <= keep {
            break;
        }
        match &v {
            Victim::Record(r) => {
                for u in r.units.iter().filter(|u| !image_units.contains(*u)) {
                    let n = holders.get_mut(u).expect("counted above");
                    *n -= 1;
                    if *n == 0 {
                        total = total.saturating_sub(scan.units.get(u).copied().unwrap_or(0));
                    }
                }
            }
            Victim::Mount(m) => total = total.saturating_sub(m.usage.size),
        }
        chosen.push(v);
    }
    chosen
}

pub(super) fn collect_digests(v: &serde_json::Value, out: &mut BTreeSet<Digest>) {
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
