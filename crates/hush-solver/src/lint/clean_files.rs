//! What the lint remembers between builds: the files of a COPY found clean, by their `lstat`
//! stamp, so that editing one file of a big context rescans that file only.

use std::path::Path;

use crate::Result;

/// What `lstat` says of a file that changes when its content does: device, inode, size, times
/// and mode.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp([u64; 8]);

impl Stamp {
    const LEN: usize = 64;

    pub(super) fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Stamp([
            m.dev(),
            m.ino(),
            m.len(),
            m.mtime() as u64,
            m.mtime_nsec() as u64,
            m.ctime() as u64,
            m.ctime_nsec() as u64,
            m.mode().into(),
        ])
    }

    fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        for (chunk, v) in b.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        let mut v = [0u64; 8];
        if b.len() != Self::LEN {
            return None;
        }
        for (x, chunk) in v.iter_mut().zip(b.chunks_exact(8)) {
            *x = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(Stamp(v))
    }
}

/// The files of a COPY's sources found clean before, by their [`Stamp`]: a file whose stamp
/// has not changed is not read again, so editing one file of a big context rescans that file.
/// Keyed by the context directory's inode (a moved checkout keeps its record; another project
/// does not share it), the sources, the secrets and hush's version (its rules).
pub(super) struct CleanFiles {
    key: hush_oci::Digest,
    known: std::collections::HashMap<String, Stamp>,
}

impl CleanFiles {
    pub(super) fn load(
        store: &hush_oci::store::Store,
        context: &Path,
        sources: &[String],
        secrets: Option<&str>,
    ) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(context).ok()?;
        let mut k = crate::cache::KeyBuilder::new(&hush_oci::Digest::of(b"lint-clean-files-v2"));
        k.add(env!("CARGO_PKG_VERSION"))
            .add(&format!("{}:{}", m.dev(), m.ino()))
            .add(&sources.join("\0"))
            .add(secrets.unwrap_or("no secrets"));
        let key = k.finish();
        // Each file: its path, a NUL (no path holds one), its stamp's fixed-length bytes.
        let record = store.cache_get(&key).unwrap_or_default();
        let mut known = std::collections::HashMap::new();
        let mut rest = &record[..];
        while let Some(nul) = rest.iter().position(|b| *b == 0) {
            let (path, tail) = (&rest[..nul], &rest[nul + 1..]);
            let Some(stamp) = tail.get(..Stamp::LEN).and_then(Stamp::from_bytes) else {
                break;
            };
            known.insert(String::from_utf8_lossy(path).into_owned(), stamp);
            rest = &tail[Stamp::LEN..];
        }
        Some(CleanFiles { key, known })
    }

    pub(super) fn is_clean(&self, path: &str, stamp: &Stamp) -> bool {
        self.known.get(path) == Some(stamp)
    }

    /// Record `clean` (path, stamp) as the files found clean, unless that is what was known.
    pub(super) fn save<'a>(
        &self,
        store: &hush_oci::store::Store,
        clean: impl Iterator<Item = (&'a str, &'a Stamp)>,
    ) -> Result<()> {
        let mut record = Vec::new();
        let (mut count, mut same) = (0, true);
        for (path, stamp) in clean {
            same &= self.is_clean(path, stamp);
            count += 1;
            record.extend_from_slice(path.as_bytes());
            record.push(0);
            record.extend_from_slice(&stamp.to_bytes());
        }
        if same && count == self.known.len() {
            return Ok(());
        }
        Ok(store.cache_put(&self.key, &record)?)
    }
}
