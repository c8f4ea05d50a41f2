//! `hush audit`: what an image gives away. Every layer's files — including files a later layer
//! deletes or overwrites, which are still in the image — and the config (env, labels, command,
//! healthcheck, history) are checked for the given secrets' values and by the detector rules.
//! A report never reveals what it found: previews show at most a rule's public prefix, and every
//! matched value is redacted in the text a finding quotes (its instruction, its location).
//! For the given secrets, the entries' names, link targets and PAX records (xattrs) are checked
//! too, and what gzip, zstd and zip files decompress to (bounded, as the build's guard does).

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Read};
use std::ops::Range;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Mutex;

use serde::Serialize;

use crate::rules::Rules;
use crate::{Guard, Redactor};

/// Bytes per unit of work: small files are batched up to this, large files cut into windows of
/// it. Memory stays bounded at a few chunks per thread, whatever the size of the image.
const CHUNK: usize = 4 << 20;

/// One finding.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Layer index (bottom = 0), or none for the config.
    pub layer: Option<usize>,
    /// The instruction that made the layer (history `created_by`).
    pub instruction: String,
    /// Path inside the layer, or the config field.
    pub location: String,
    /// The rule id, or `secret:<id> (<form>)` for a known value.
    pub rule: String,
    /// Where in the file the value starts (none for the config).
    pub offset: Option<u64>,
    /// A redacted preview: a rule's public prefix and the last 2 characters (`ghp_…A5`); none
    /// for a `--secret`'s value or a rule without a public prefix.
    pub preview: Option<String>,
    /// The layer that deletes or overwrites the file, when one does.
    pub deleted_in: Option<usize>,
}

/// A layer to audit: the instruction that made it and its uncompressed tar.
pub struct Layer {
    /// History `created_by`.
    pub instruction: String,
    /// The tar stream.
    pub tar: Box<dyn Read + Send>,
}

/// The bytes of one file, or of one window of a large file, inside a chunk.
struct Piece {
    path: String,
    /// Where in the chunk.
    range: Range<usize>,
    /// The part of `range` (relative to it) whose matches this piece reports; the rest is
    /// context shared with the neighbouring windows of the same file.
    owned: Range<usize>,
    /// The file offset of `range.start`.
    base: u64,
}

/// A unit of scanning work: bytes of one layer.
struct Chunk {
    layer: usize,
    data: Vec<u8>,
    pieces: Vec<Piece>,
}

/// The PAX record prefix of an extended attribute.
const XATTR_PAX_PREFIX: &[u8] = b"SCHILY.xattr.";
/// What follows a file's path in the location of a finding in one of its extended attributes:
/// `/bin/tool (xattr user.token)`, as the leak guard names it.
const XATTR_TAG: &str = " (xattr ";

/// The paths one layer writes, deletes, and the directories it makes opaque (`dir/`).
#[derive(Default)]
struct Changes {
    written: BTreeSet<String>,
    deleted: BTreeSet<String>,
}

/// What an audit found, redacted, and the redactor for any other text of the image a report
/// shows (`hush history --secrets` redacts every history entry with it).
pub struct Audit<'a> {
    /// The findings, sorted by layer and path, the config's last.
    pub findings: Vec<Finding>,
    /// Knows every value found.
    pub redactor: Redactor<'a>,
}

/// Audit layers (bottom first) and a config blob.
///
/// Layers are read in parallel (one reader per layer, up to one per core) and their bytes are
/// scanned by one worker per core; findings come back sorted by layer and path.
pub fn audit<'a>(
    layers: Vec<Layer>,
    config: &[u8],
    guard: &'a Guard,
    rules: &'a Rules,
) -> io::Result<Audit<'a>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(16));
    // Each window of a large file shares this much with each neighbour.
    let overlap = rules.reach().max(guard.max_len());
    let instructions: Vec<String> = layers.iter().map(|l| l.instruction.clone()).collect();
    let count = layers.len();
    let queue = Mutex::new(layers.into_iter().enumerate().collect::<VecDeque<_>>());
    let changes: Mutex<Vec<Changes>> = Mutex::new((0..count).map(|_| Changes::default()).collect());
    let (tx, rx) = sync_channel::<Chunk>(threads * 2);
    let rx = Mutex::new(rx);
    // Findings the readers make themselves: names, xattrs, decompressed contents.
    let direct: Mutex<Vec<Finding>> = Mutex::new(Vec::new());
    let (mut findings, mut values) =
        std::thread::scope(|s| -> io::Result<(Vec<Finding>, Vec<Vec<u8>>)> {
            let (queue, changes, rx, instructions) = (&queue, &changes, &rx, &instructions);
            let direct = &direct;
            let readers: Vec<_> = (0..threads.min(count))
                .map(|_| {
                    let tx = tx.clone();
                    s.spawn(move || -> io::Result<()> {
                        // A statement of its own: the guard of a `while let` scrutinee lives
                        // through the body, which would read the layers one at a time and
                        // deadlock on the `clear` below.
                        loop {
                            let next = queue.lock().expect("queue").pop_front();
                            let Some((i, layer)) = next else { break };
                            let own = Own {
                                guard,
                                layer: i,
                                instruction: &instructions[i],
                                found: direct,
                            };
                            match read_layer(i, layer.tar, &tx, overlap, &own) {
                                Ok(c) => changes.lock().expect("changes")[i] = c,
                                Err(e) => {
                                    queue.lock().expect("queue").clear();
                                    return Err(e);
                                }
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            drop(tx);
            let scanners: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(move || {
                        let (mut out, mut values) = (Vec::new(), Vec::new());
                        // The lock is held only while waiting: workers take turns at the queue.
                        while let Ok(chunk) = rx.lock().expect("chunks").recv() {
                            scan_chunk(
                                &chunk,
                                guard,
                                rules,
                                &instructions[chunk.layer],
                                &mut out,
                                &mut values,
                            );
                        }
                        (out, values)
                    })
                })
                .collect();
            let mut failed = None;
            for r in readers {
                if let Err(e) = r.join().expect("a layer reader panicked") {
                    failed.get_or_insert(e);
                }
            }
            let (mut out, mut values) = (Vec::new(), Vec::new());
            for w in scanners {
                let (o, v) = w.join().expect("a scanner panicked");
                out.extend(o);
                values.extend(v);
            }
            failed.map_or(Ok((out, values)), Err)
        })?;
    findings.extend(direct.into_inner().expect("findings"));
    let changes = changes.into_inner().expect("changes");
    // Which later layer hides each file.
    for f in &mut findings {
        let Some(i) = f.layer else { continue };
        // An attribute goes with its file.
        let p = f.location.trim_start_matches('/');
        let p = p.split_once(XATTR_TAG).map_or(p, |(file, _)| file);
        f.deleted_in = (i + 1..changes.len()).find(|&j| {
            changes[j].written.contains(p)
                || changes[j].deleted.iter().any(|d| {
                    p == d
                        || (d.ends_with('/') && p.starts_with(d.as_str()))
                        || p.strip_prefix(d.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                })
        });
    }
    findings.sort();
    findings.extend(audit_config(config, guard, rules, &mut values));
    let redactor = Redactor::new(guard, rules, values);
    for f in &mut findings {
        f.instruction = redactor.redact(&f.instruction);
        f.location = redactor.redact(&f.location);
    }
    Ok(Audit { findings, redactor })
}

/// What a layer reader checks itself: a secret in an entry's metadata, or in what a compressed
/// file decompresses to.
struct Own<'a> {
    guard: &'a Guard,
    layer: usize,
    instruction: &'a str,
    found: &'a Mutex<Vec<Finding>>,
}

impl Own<'_> {
    fn report(&self, hits: Vec<crate::Hit>) {
        if hits.is_empty() {
            return;
        }
        let mut found = self.found.lock().expect("findings");
        for h in hits {
            found.push(Finding {
                layer: Some(self.layer),
                instruction: self.instruction.to_string(),
                location: format!("/{}", self.guard.mask_str(&h.path)),
                rule: format!("secret:{} ({})", h.form.secret_id, h.form.form),
                offset: Some(h.offset),
                preview: None,
                deleted_in: None,
            });
        }
    }

    /// The entry's name, link target and PAX records other than xattrs (those go to the
    /// scanners with the file's contents, where the detector rules see them too).
    fn metadata<R: Read>(&self, path: &str, entry: &mut tar::Entry<'_, R>) -> io::Result<()> {
        let mut s = self.guard.scan();
        s.feed(&format!("{path} (file name)"), &entry.path_bytes());
        if let Some(link) = entry.link_name_bytes() {
            s.feed(&format!("{path} (link target)"), &link);
        }
        if let Some(records) = entry.pax_extensions()? {
            for r in records {
                let r = r?;
                if r.key_bytes().starts_with(XATTR_PAX_PREFIX) {
                    continue;
                }
                let key = String::from_utf8_lossy(r.key_bytes());
                s.feed(&format!("{path} (PAX record {key})"), r.value_bytes());
            }
        }
        self.report(s.finish());
        Ok(())
    }
}

/// Read one layer's tar, sending its files' bytes to the scanners in chunks.
fn read_layer(
    layer: usize,
    tar: Box<dyn Read + Send>,
    tx: &SyncSender<Chunk>,
    overlap: usize,
    own: &Own<'_>,
) -> io::Result<Changes> {
    let send = |chunk: Chunk| {
        tx.send(chunk)
            .map_err(|_| io::Error::other("scanners stopped"))
    };
    let window = CHUNK.max(4 * overlap);
    let mut changes = Changes::default();
    let mut batch = Chunk::new(layer);
    let mut ar = tar::Archive::new(tar);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let path = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if !own.guard.is_empty() {
            own.metadata(&path, &mut entry)?;
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        if name == ".wh..wh..opq" {
            changes.deleted.insert(format!("{dir}/"));
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            changes.deleted.insert(if dir.is_empty() {
                hidden.to_string()
            } else {
                format!("{dir}/{hidden}")
            });
            continue;
        }
        changes.written.insert(path.clone());
        // Extended attributes (PAX `SCHILY.xattr.*` records) are bytes of the image too.
        if let Some(exts) = entry.pax_extensions()? {
            for ext in exts {
                let ext = ext?;
                let Some(name) = ext.key_bytes().strip_prefix(XATTR_PAX_PREFIX) else {
                    continue;
                };
                let value = ext.value_bytes();
                if !batch.data.is_empty() && batch.data.len().saturating_add(value.len()) > CHUNK {
                    send(std::mem::replace(&mut batch, Chunk::new(layer)))?;
                }
                let start = batch.data.len();
                batch.data.extend_from_slice(value);
                batch.pieces.push(Piece {
                    path: format!("/{path}{XATTR_TAG}{})", String::from_utf8_lossy(name)),
                    range: start..batch.data.len(),
                    owned: 0..value.len(),
                    base: 0,
                });
            }
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let size = usize::try_from(entry.size()).unwrap_or(usize::MAX);
        if !batch.data.is_empty() && batch.data.len().saturating_add(size) > CHUNK {
            send(std::mem::replace(&mut batch, Chunk::new(layer)))?;
        }
        let mut unpacked = (!own.guard.is_empty()).then(|| crate::unpack::Unpacked::new(&path));
        let mut inner = own.guard.scan();
        if size <= CHUNK {
            let start = batch.data.len();
            entry.read_to_end(&mut batch.data)?;
            let len = batch.data.len() - start;
            if let Some(mut u) = unpacked {
                u.feed(&batch.data[start..], &mut inner);
                u.finish(&mut inner);
                own.report(inner.finish());
            }
            batch.pieces.push(Piece {
                path: format!("/{path}"),
                range: start..start + len,
                owned: 0..len,
                base: 0,
            });
            continue;
        }
        // A large file: windows that overlap by `2 * overlap`, each owning its middle.
        let mut carry = Vec::new();
        let mut base = 0u64;
        loop {
            let kept = carry.len();
            let mut data = carry;
            fill(&mut entry, &mut data, window)?;
            if let Some(u) = &mut unpacked {
                u.feed(&data[kept..], &mut inner);
            }
            let eof = data.len() < window;
            let len = data.len();
            let owned = if kept == 0 { 0 } else { overlap }..if eof { len } else { len - overlap };
            carry = if eof {
                Vec::new()
            } else {
                data[len - 2 * overlap..].to_vec()
            };
            send(Chunk {
                layer,
                pieces: vec![Piece {
                    path: format!("/{path}"),
                    range: 0..len,
                    owned,
                    base,
                }],
                data,
            })?;
            if eof {
                break;
            }
            base += (len - 2 * overlap) as u64;
        }
        if let Some(u) = unpacked {
            u.finish(&mut inner);
            own.report(inner.finish());
        }
    }
    // What follows the end of the archive is part of the layer too: a reader that checks the
    // layer against its digest (`hush_oci::source`) reports a mismatch only at its end.
    io::copy(&mut ar.into_inner(), &mut io::sink())?;
    if !batch.data.is_empty() {
        send(batch)?;
    }
    Ok(changes)
}

/// Read from `r` until `buf` holds `len` bytes or the stream ends.
fn fill(r: &mut impl Read, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
    let have = buf.len();
    r.take((len - have) as u64).read_to_end(buf)?;
    Ok(())
}

impl Chunk {
    fn new(layer: usize) -> Self {
        Chunk {
            layer,
            data: Vec::with_capacity(CHUNK),
            pieces: Vec::new(),
        }
    }
}

fn scan_chunk(
    chunk: &Chunk,
    guard: &Guard,
    rules: &Rules,
    instruction: &str,
    out: &mut Vec<Finding>,
    values: &mut Vec<Vec<u8>>,
) {
    for p in &chunk.pieces {
        let bytes = &chunk.data[p.range.clone()];
        let finding = |rule: String, offset: u64, preview: Option<String>| Finding {
            layer: Some(chunk.layer),
            instruction: instruction.to_string(),
            // A secret used as a directory name is in the path of every file below it.
            location: guard.mask_str(&p.path),
            rule,
            offset: Some(p.base + offset),
            preview,
            deleted_in: None,
        };
        for h in guard.scan_bytes(&p.path, bytes) {
            if p.owned.contains(&(h.offset as usize)) {
                out.push(finding(
                    format!("secret:{} ({})", h.form.secret_id, h.form.form),
                    h.offset,
                    None,
                ));
            }
        }
        for h in rules.scan_owned(bytes, p.owned.clone()) {
            values.push(bytes[h.offset..h.offset + h.len].to_vec());
            out.push(finding(h.rule.to_string(), h.offset as u64, h.preview));
        }
    }
}

fn audit_config(
    config: &[u8],
    guard: &Guard,
    rules: &Rules,
    values: &mut Vec<Vec<u8>>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(config) else {
        return out;
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    let c = &v["config"];
    for (name, val) in [
        ("Env", &c["Env"]),
        ("Cmd", &c["Cmd"]),
        ("Entrypoint", &c["Entrypoint"]),
        ("Healthcheck.Test", &c["Healthcheck"]["Test"]),
    ] {
        if let Some(a) = val.as_array() {
            for (k, s) in a.iter().enumerate() {
                let s = s.as_str().unwrap_or_default();
                fields.push((format!("config.{name}[{k}]"), s.to_string()));
                // The value on its own too: a rule anchored at the start of a line (`.pypirc`)
                // sees it there.
                if let Some((_, v)) = s.split_once('=').filter(|_| name == "Env") {
                    fields.push((format!("config.{name}[{k}]"), v.to_string()));
                }
            }
        }
    }
    if let Some(labels) = c["Labels"].as_object() {
        for (k, s) in labels {
            let v = s.as_str().unwrap_or_default();
            fields.push((format!("config.Labels[{k:?}]"), format!("{k}={v}")));
            fields.push((format!("config.Labels[{k:?}]"), v.to_string()));
        }
    }
    if let Some(h) = v["history"].as_array() {
        for (k, e) in h.iter().enumerate() {
            if let Some(s) = e["created_by"].as_str() {
                fields.push((format!("history[{k}].created_by"), s.to_string()));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (location, text) in fields {
        let found = guard
            .scan_bytes(&location, text.as_bytes())
            .into_iter()
            .map(|h| {
                (
                    format!("secret:{} ({})", h.form.secret_id, h.form.form),
                    None,
                )
            })
            .chain(rules.scan(text.as_bytes()).into_iter().map(|h| {
                values.push(text.as_bytes()[h.offset..h.offset + h.len].to_vec());
                (h.rule.to_string(), h.preview)
            }));
        for (rule, preview) in found {
            if seen.insert((location.clone(), rule.clone())) {
                out.push(Finding {
                    layer: None,
                    instruction: String::new(),
                    location: location.clone(),
                    rule,
                    offset: None,
                    preview,
                    deleted_in: None,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Box<dyn Read + Send> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, p, *data).unwrap();
        }
        Box::new(std::io::Cursor::new(b.into_inner().unwrap()))
    }

    /// A layer stream that fails only at its very end, after the tar's end-of-archive blocks
    /// (a checked source's digest mismatch), as the first of several layers.
    struct FailsAtEnd(std::io::Cursor<Vec<u8>>);

    impl Read for FailsAtEnd {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 if !buf.is_empty() => Err(io::Error::other("digest mismatch at the end")),
                n => Ok(n),
            }
        }
    }

    /// The stream is read to its end, and an error there fails the audit — it does not hang
    /// the other readers, nor is it taken for a clean layer.
    #[test]
    fn a_layer_that_fails_at_its_end_fails_the_audit() {
        let guard = Guard::new([("pw", &b"hunter2-correct-horse"[..])], 8);
        let rules = Rules::new();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "f", &b"hello"[..]).unwrap();
        let bad = b.into_inner().unwrap();
        let mut layers = vec![Layer {
            instruction: "bad".into(),
            tar: Box::new(FailsAtEnd(std::io::Cursor::new(bad))),
        }];
        for i in 0..8 {
            layers.push(Layer {
                instruction: format!("layer {i}"),
                tar: tar_of(&[("g", b"clean")]),
            });
        }
        let e = audit(layers, b"{}", &guard, &rules)
            .err()
            .expect("an error");
        assert!(e.to_string().contains("digest mismatch"), "{e}");
    }

    /// A file larger than a chunk is scanned in overlapping windows: a value or a token that
    /// straddles a window edge, or sits in the shared part, is reported once, at its offset.
    #[test]
    fn large_files_are_scanned_across_window_edges_once() {
        let secret = b"hunter2-correct-horse";
        let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
        let guard = Guard::new([("pw", &secret[..])], crate::DEFAULT_MIN_LEN);
        let rules = Rules::new();
        let overlap = rules.reach().max(guard.max_len());
        let mut file = vec![b'.'; 3 * CHUNK + 123];
        // Straddling the first window's end, inside the shared part, and at the very end.
        let mut at = vec![CHUNK - 5, CHUNK - overlap - 3, CHUNK - 2 * overlap + 1];
        at.push(file.len() - secret.len());
        for &o in &at {
            file[o..o + secret.len()].copy_from_slice(secret);
        }
        let t = 2 * CHUNK - overlap;
        file[t..t + token.len()].copy_from_slice(token.as_bytes());
        let layers = vec![Layer {
            instruction: "COPY big /big".into(),
            tar: tar_of(&[("big", &file)]),
        }];
        let f = audit(layers, b"{}", &guard, &rules).unwrap().findings;
        let mut got: Vec<u64> = f
            .iter()
            .filter(|x| x.rule == "secret:pw (raw)")
            .filter_map(|x| x.offset)
            .collect();
        got.sort();
        let mut want: Vec<u64> = at.iter().map(|o| *o as u64).collect();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(f.iter().filter(|x| x.rule == "github-token").count(), 1);
    }

    /// A secret as a file name, a directory name, a symlink target, an xattr (a PAX
    /// `SCHILY.xattr.*` record, as a layer with xattrs carries it) and inside a gzip: each is
    /// found, and no location shows it.
    #[test]
    fn finds_values_in_names_links_xattrs_and_compressed_files() {
        use std::io::Write;
        let secret = "hunter2-correct-horse";
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        b.append_data(&mut h, format!("{secret}/"), io::empty())
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("{secret}/inside"), &b"ok"[..])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "link", format!("/run/{secret}"))
            .unwrap();
        b.append_pax_extensions([("SCHILY.xattr.user.note", secret.as_bytes())])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "attr", &b"ok"[..]).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(format!("backup of {secret}\n").as_bytes())
            .unwrap();
        let gz = gz.finish().unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(gz.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "backup.tgz", &gz[..]).unwrap();
        let layers = vec![Layer {
            instruction: "RUN …".into(),
            tar: Box::new(std::io::Cursor::new(b.into_inner().unwrap())),
        }];
        let guard = Guard::new([("pw", secret.as_bytes())], crate::DEFAULT_MIN_LEN);
        let rules = Rules::new();
        let f = audit(layers, b"{}", &guard, &rules).unwrap();
        let mut got: Vec<&str> = f
            .findings
            .iter()
            .filter(|x| x.rule == "secret:pw (raw)")
            .map(|x| x.location.as_str())
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "/**** (file name)",
                "/****/inside (file name)",
                "/attr (xattr user.note)",
                "/backup.tgz (gzip)",
                "/link (link target)"
            ]
        );
        assert!(f
            .findings
            .iter()
            .all(|x| !format!("{x:?}").contains(secret)));
    }

    /// A value in an extended attribute is found and named by its file and attribute; the
    /// file's deletion covers it.
    #[test]
    fn finds_values_in_extended_attributes() {
        let mut b = tar::Builder::new(Vec::new());
        let rec = b"40 SCHILY.xattr.user.pw=hunter2-horses!\n";
        assert_eq!(rec.len(), 40);
        let mut x = tar::Header::new_ustar();
        x.set_entry_type(tar::EntryType::XHeader);
        x.set_size(rec.len() as u64);
        x.set_cksum();
        b.append(&x, &rec[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o755);
        b.append_data(&mut h, "bin/tool", &b"ok"[..]).unwrap();
        let layers = vec![
            Layer {
                instruction: "RUN setfattr".into(),
                tar: Box::new(std::io::Cursor::new(b.into_inner().unwrap())),
            },
            Layer {
                instruction: "RUN rm /bin/tool".into(),
                tar: tar_of(&[("bin/.wh.tool", b"")]),
            },
        ];
        let guard = Guard::new([("pw", &b"hunter2-horses!"[..])], 8);
        let rules = Rules::new();
        let f = audit(layers, b"{}", &guard, &rules).unwrap();
        let hit = f
            .findings
            .iter()
            .find(|x| x.rule == "secret:pw (raw)")
            .unwrap();
        assert_eq!(
            (hit.layer, hit.location.as_str(), hit.deleted_in),
            (Some(0), "/bin/tool (xattr user.pw)", Some(1))
        );
    }

    #[test]
    fn finds_values_in_deleted_files_and_config() {
        let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
        let layers = vec![
            Layer {
                instruction: "COPY secrets.txt /app/".into(),
                tar: tar_of(&[("app/secrets.txt", b"pw=hunter2-correct-horse\n")]),
            },
            Layer {
                instruction: "RUN rm /app/secrets.txt".into(),
                tar: tar_of(&[("app/.wh.secrets.txt", b"")]),
            },
            Layer {
                instruction: "COPY tok /tok".into(),
                tar: tar_of(&[("tok", token.as_bytes())]),
            },
        ];
        let config = serde_json::json!({"config": {"Env": ["PATH=/bin", format!("TOKEN={token}")]}, "history": []});
        let guard = Guard::new(
            [("pw", &b"hunter2-correct-horse"[..])],
            crate::DEFAULT_MIN_LEN,
        );
        let rules = Rules::new();
        let f = audit(layers, config.to_string().as_bytes(), &guard, &rules)
            .unwrap()
            .findings;
        let secret = f.iter().find(|x| x.rule.starts_with("secret:pw")).unwrap();
        assert_eq!(
            (secret.layer, secret.location.as_str(), secret.deleted_in),
            (Some(0), "/app/secrets.txt", Some(1))
        );
        assert!(f
            .iter()
            .any(|x| x.rule == "github-token" && x.layer == Some(2) && x.deleted_in.is_none()));
        assert!(f
            .iter()
            .any(|x| x.rule == "github-token" && x.location == "config.Env[1]"));
        assert!(f.iter().all(|x| x
            .preview
            .as_deref()
            .is_none_or(|p| !p.contains("hunter2") && !p.contains(&token[4..]))));
    }

    /// The instruction a finding quotes (a layer's history entry) has every found value
    /// redacted: a `--secret`'s, a rule's match in the entry itself, and a value a rule found in
    /// a file that no rule recognises in the entry.
    #[test]
    fn instructions_are_redacted() {
        let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
        let pw = "Zq8#kP2vLm9xR4tYw";
        let layers = vec![Layer {
            instruction: format!(
                "RUN |3 S=hunter2-correct-horse T={token} P={pw} /bin/sh -c ./setup # buildkit"
            ),
            tar: tar_of(&[("app/config.ini", format!("password = {pw}\n").as_bytes())]),
        }];
        let guard = Guard::new(
            [("pw", &b"hunter2-correct-horse"[..])],
            crate::DEFAULT_MIN_LEN,
        );
        let rules = Rules::new();
        let a = audit(layers, b"{}", &guard, &rules).unwrap();
        assert!(!a.findings.is_empty());
        for f in &a.findings {
            assert_eq!(
                f.instruction,
                "RUN |3 S=<redacted> T=<redacted> P=<redacted> /bin/sh -c ./setup # buildkit"
            );
        }
        assert_eq!(a.redactor.redact(&format!("x {pw} y")), "x <redacted> y");
    }
}
