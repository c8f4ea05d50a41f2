//! What the store holds, who holds it, and when each build-cache record was last used: what
//! `hush df` shows and what `prune --keep-storage` chooses from.
//!
//! Disk use is counted per *unit*: a snapshot (`snapshots/<20 hex>`) with the blobs whose
//! digests start with its name (a pulled layer keeps its blob beside its snapshot; a built one
//! only the snapshot), and every other blob (configs, manifests) as a unit of its own. An image
//! holds the units of its manifest, config and layers; a record, the units of the digests it
//! names. A unit held by nothing is garbage that any prune removes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::time::SystemTime;

use super::Store;
use crate::error::IoContext;
use crate::{Digest, Result};

/// An image of the index.
#[derive(Debug, Clone)]
pub struct ImageUse {
    /// Its names (none: an untagged build, which a prune removes).
    pub names: Vec<String>,
    /// Its id (config digest).
    pub id: Digest,
    /// The bytes of the units it holds (layers, config, manifest), shared ones too.
    pub size: u64,
    /// The part of `size` that no other image holds.
    pub unique: u64,
}

/// A build-cache record of a step.
#[derive(Debug, Clone)]
pub struct RecordUse {
    /// Its key (hex).
    pub key: String,
    /// When a build last ran or took it.
    pub last_used: SystemTime,
    /// The bytes of what it holds that no image holds (what removing it, and every other record
    /// that holds the same, gives back).
    pub size: u64,
    /// An image holds its layer too.
    pub in_image: bool,
}

/// A `RUN --mount=type=cache` directory.
#[derive(Debug, Clone)]
pub struct MountUse {
    /// Its directory name (the id made safe, and a hash of it).
    pub name: String,
    /// The bytes it holds.
    pub size: u64,
    /// When a RUN last mounted it.
    pub last_used: SystemTime,
}

/// What the store holds.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Every image of the index, tagged or not.
    pub images: Vec<ImageUse>,
    /// Every step record.
    pub records: Vec<RecordUse>,
    /// Every cache mount.
    pub mounts: Vec<MountUse>,
    /// Snapshots and blobs: (count, bytes) held by images, by records only, and by nothing.
    pub layers: LayerTotals,
    /// The bytes images hold (each unit once).
    pub image_bytes: u64,
    /// The bytes build-cache records hold and no image does (each unit once): what
    /// `prune --all` gives back of the cache.
    pub cache_bytes: u64,
}

/// The store's snapshots and blobs, by who holds them.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerTotals {
    /// Snapshots.
    pub count: usize,
    /// Snapshots an image or a record holds.
    pub active: usize,
    /// Bytes of every snapshot and blob.
    pub size: u64,
    /// Bytes that nothing holds: what a plain `prune` gives back.
    pub garbage: u64,
}

/// One record file as found, for the usage and the least-recently-used prune.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub key: String,
    pub path: PathBuf,
    pub last_used: SystemTime,
    /// A step's record (with a `layer` field), not a memo of another kind.
    pub step: bool,
    pub units: BTreeSet<String>,
}

/// A cache mount as found.
#[derive(Debug, Clone)]
pub(super) struct Mount {
    pub dir: PathBuf,
    pub lock: PathBuf,
    pub usage: MountUse,
}

/// The raw material: unit sizes and holders.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub units: BTreeMap<String, u64>,
    pub snapshots: usize,
    /// The index: key → manifest digest.
    pub index: BTreeMap<String, Digest>,
    /// Per manifest digest: the image's id and units.
    pub images: BTreeMap<Digest, (Digest, BTreeSet<String>)>,
    pub records: Vec<Record>,
    pub mounts: Vec<Mount>,
}

/// The unit a digest belongs to.
pub(super) fn unit(d: &Digest) -> String {
    d.hex()[..20].to_string()
}

impl Scan {
    /// Every unit an image holds.
    pub(super) fn image_units(&self) -> BTreeSet<String> {
        self.images.values().flat_map(|(_, u)| u.clone()).collect()
    }

    /// The bytes of `units`.
    pub(super) fn size_of<'a>(&self, units: impl IntoIterator<Item = &'a String>) -> u64 {
        units.into_iter().filter_map(|u| self.units.get(u)).sum()
    }
}

impl Store {
    /// Look at everything: sizes, the images that hold what, the records and their last uses.
    pub(super) fn scan(&self) -> Result<Scan> {
        let mut s = Scan::default();
        let snaps = self.root.join("snapshots");
        for e in fs::read_dir(&snaps).ctx("read", &snaps)? {
            let e = e.ctx("read", &snaps)?;
            let name = e.file_name().to_string_lossy().to_string();
            // A snapshot removed while we look (another command's prune never runs meanwhile,
            // but a build may replace its own) counts nothing.
            let n = crate::layer::content_size(&e.path()).unwrap_or(0);
            *s.units.entry(name).or_default() += n;
            s.snapshots += 1;
        }
        let blobs = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blobs).ctx("read", &blobs)? {
            let e = e.ctx("read", &blobs)?;
            let name = e.file_name().to_string_lossy().to_string();
            let n = e.metadata().map(|m| m.len()).unwrap_or(0);
            *s.units.entry(name.chars().take(20).collect()).or_default() += n;
        }
        s.index = self.read_index()?;
        for m in s.index.values().collect::<BTreeSet<_>>() {
            let img = self.image_by_manifest(m)?;
            let mut units: BTreeSet<String> = [unit(m), unit(&img.config_digest)].into();
            for l in img.layers()? {
                units.insert(unit(&l.digest));
            }
            units.extend(img.config.rootfs.diff_ids.iter().map(unit));
            s.images.insert(m.clone(), (img.config_digest, units));
        }
        let cache = self.root.join("cache");
        for e in fs::read_dir(&cache).ctx("read", &cache)? {
            let e = e.ctx("read", &cache)?;
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            let bytes = fs::read(&path).unwrap_or_default();
            let json = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
            let mut digests = BTreeSet::new();
            if let Some(v) = &json {
                super::prune::collect_digests(v, &mut digests);
            }
            s.records.push(Record {
                key: e.file_name().to_string_lossy().to_string(),
                path,
                last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                step: json.as_ref().is_some_and(|v| v.get("layer").is_some()),
                units: digests.iter().map(unit).collect(),
            });
        }
        let mounts = self.cache_mounts_dir();
        for e in fs::read_dir(&mounts).ctx("read", &mounts)? {
            let e = e.ctx("read", &mounts)?;
            let dir = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) || dir.extension().is_some() {
                continue; // a lock file, or a seeding in progress (`.new`)
            }
            let lock = dir.with_extension("lock");
            let last_used = fs::metadata(&lock)
                .or_else(|_| e.metadata())
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            s.mounts.push(Mount {
                usage: MountUse {
                    name: e.file_name().to_string_lossy().to_string(),
                    // A RUN may be writing to it: what it holds now.
                    size: crate::layer::content_size(&dir).unwrap_or(0),
                    last_used,
                },
                dir,
                lock,
            });
        }
        Ok(s)
    }

    /// What the store holds and who holds it (`hush df`).
    pub fn usage(&self) -> Result<Usage> {
        let s = self.scan()?;
        let image_units = s.image_units();
        let mut holders: BTreeMap<&String, usize> = BTreeMap::new();
        for (_, units) in s.images.values() {
            for u in units {
                *holders.entry(u).or_default() += 1;
            }
        }
        let images = s
            .images
            .iter()
            .map(|(m, (id, units))| ImageUse {
                names: s
                    .index
                    .iter()
                    .filter(|(k, d)| *d == m && !super::is_untagged_id(k))
                    .map(|(k, _)| k.clone())
                    .collect(),
                id: id.clone(),
                size: s.size_of(units),
                unique: s.size_of(units.iter().filter(|u| holders[u] == 1)),
            })
            .collect();
        let records = s
            .records
            .iter()
            .filter(|r| r.step)
            .map(|r| RecordUse {
                key: r.key.clone(),
                last_used: r.last_used,
                size: s.size_of(r.units.iter().filter(|u| !image_units.contains(*u))),
                in_image: r.units.iter().any(|u| image_units.contains(u)),
            })
            .collect();
        let held: BTreeSet<&String> = image_units
            .iter()
            .chain(s.records.iter().flat_map(|r| &r.units))
            .collect();
        let snaps = self.root.join("snapshots");
        let active = s
            .units
            .keys()
            .filter(|u| held.contains(u) && snaps.join(u).is_dir())
            .count();
        let layers = LayerTotals {
            count: s.snapshots,
            active,
            size: s.units.values().sum(),
            garbage: s
                .units
                .iter()
                .filter(|(u, _)| !held.contains(u))
                .map(|(_, n)| n)
                .sum(),
        };
        let cache_units: BTreeSet<&String> = s
            .records
            .iter()
            .flat_map(|r| &r.units)
            .filter(|u| !image_units.contains(*u))
            .collect();
        Ok(Usage {
            image_bytes: s.size_of(&image_units),
            cache_bytes: s.size_of(cache_units),
            images,
            records,
            mounts: s.mounts.into_iter().map(|m| m.usage).collect(),
            layers,
        })
    }

    /// The bytes the store holds in snapshots, blobs and cache mounts (what
    /// `prune --keep-storage` and the store's size limit measure).
    pub fn disk_use(&self) -> Result<u64> {
        let s = self.scan()?;
        Ok(s.units.values().sum::<u64>() + s.mounts.iter().map(|m| m.usage.size).sum::<u64>())
    }
}
