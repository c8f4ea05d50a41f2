//! The store's configuration file, `$HUSH_ROOT/config.toml` (optional):
//!
//! ```toml
//! [store]
//! max-size = "20GB"   # powers of 1024, as --keep-storage
//! ```
//!
//! With `max-size`, every build ends by removing build-cache records, least recently used
//! first, until the store fits (`hush prune --keep-storage`'s rule, as BuildKit's garbage
//! collector keeps its `keepBytes`). It needs the store to itself: when another hush command
//! is using the store at that moment, nothing waits — the next build to end does it. A file
//! hush cannot read, or a key it does not know, fails the build before it starts.

use std::path::Path;

use hush_oci::store::Store;
use serde::Deserialize;

use super::{CliError, CliResult};
use crate::output::errln;

/// The file's name in the store's root.
pub(crate) const FILE: &str = "config.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    store: StoreSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct StoreSection {
    max_size: Option<String>,
}

/// The store's size limit in bytes, if its config file sets one.
pub(crate) fn max_size(root: &Path) -> CliResult<Option<u64>> {
    let path = root.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CliError::Io {
                what: format!("read {}", path.display()),
                source,
            })
        }
    };
    let bad = |why: String| CliError::Usage(format!("{}: {why}", path.display()));
    let config: Config = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    config
        .store
        .max_size
        .map(|s| super::units::parse_size(&s).map_err(|e| bad(format!("store.max-size: {e}"))))
        .transpose()
}

/// At the end of a build: bring the store within `limit` if no other command uses it now.
pub(crate) fn enforce(store: &Store, limit: u64) {
    // Measured first without the lock: builds that start meanwhile are not held up by the walk,
    // and a store within its limit is never locked.
    match store.disk_use() {
        Ok(n) if n <= limit => return,
        Ok(_) => {}
        Err(e) => return super::warn_chain("failed to measure the store for its size limit", &e),
    }
    let lock = match store.try_lock_exclusive() {
        Ok(Some(l)) => l,
        Ok(None) => {
            tracing::debug!("the store is in use: its size limit is left to the next build");
            return;
        }
        Err(e) => {
            return super::warn_chain(
                "failed to lock the store to keep it within its size limit",
                &e,
            )
        }
    };
    let opts = hush_oci::store::PruneOptions {
        keep_storage: Some(limit),
        keep_untagged: true,
        ..Default::default()
    };
    match store.prune(&lock, &opts) {
        Ok(p) if p.records > 0 || p.reclaimed > 0 => errln!(
            "the store is limited to {} ({}): removed {} build-cache records, least recently used first; reclaimed {}, the store holds {}",
            super::units::human_size(limit),
            store.root().join(FILE).display(),
            p.records,
            super::units::human_size(p.reclaimed),
            super::units::human_size(p.remaining)
        ),
        Ok(_) => {}
        Err(e) => super::warn_chain("failed to keep the store within its size limit", &e),
    }
}
