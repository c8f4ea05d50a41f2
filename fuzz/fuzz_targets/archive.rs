//! The outer archives `hush load` and `hush audit` read, on arbitrary bytes: the tar index
//! (`TarIndex`: members, links between them, small documents and members read through it) and
//! `hush_oci::source::load` of it as an `Archive` into a fresh store with a 1 MiB limit. Besides not panicking: nothing
//! beside the store may be touched, and the store's own directories must survive.
#![no_main]

use std::io::Read;

use hush_fuzz::Sandbox;
use hush_oci::store::Store;
use hush_oci::tarindex::TarIndex;
use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 1 << 20;
/// Members a reader asks for: docker-archive and OCI-layout documents, a blob, a layer (the
/// docker-save seed's `l2/layer.tar` is a symlink to a blob).
const NAMES: &[&str] = &[
    "manifest.json",
    "index.json",
    "oci-layout",
    "repositories",
    "./blobs/sha256/../sha256/a",
    "layer.tar",
    "l2/layer.tar",
];

fuzz_target!(|data: &[u8]| {
    let sb = Sandbox::new();
    let input = sb.path("in.tar");
    std::fs::write(&input, data).expect("write the input");

    let idx = TarIndex::open(&input);
    hush_fuzz::debug("TarIndex::open", &idx.as_ref().map(|_| ()));
    if let Ok(idx) = idx {
        for name in NAMES {
            let _ = idx.contains(name);
            hush_fuzz::debug(name, &idx.read(name).map(|b| b.len()));
            if let Ok((r, _)) = idx.open_member(name) {
                let _ = r.take(LIMIT).read_to_end(&mut Vec::new());
            }
        }
    }

    let store = Store::open(sb.path("store")).expect("open a store");
    let scratch = store.temp_dir("fuzz").expect("a scratch dir in the store");
    let r = hush_oci::source::Archive::open_path(&input, &scratch, LIMIT)
        .and_then(|a| hush_oci::source::load(&store, &a, LIMIT));
    hush_fuzz::debug("source::load", &r.as_ref().map(|v| v.len()));
    if let Err(e) = r {
        let _ = e.to_string();
    }
    sb.assert_only(&["in.tar", "store"]);
    for d in ["blobs/sha256", "snapshots", "tmp"] {
        assert!(
            Sandbox::is_dir(&store.root().join(d)),
            "the store's {d} is gone or replaced"
        );
    }
});
