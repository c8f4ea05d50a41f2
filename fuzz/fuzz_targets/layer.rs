//! `apply_layer` on arbitrary bytes (plain, gzip or zstd, as `decompress` sniffs them) into a
//! fresh directory with a 1 MiB limit. Besides not panicking: nothing beside the destination
//! may be created, changed or removed, whatever the entries' names, links and whiteouts say.
#![no_main]

use std::io::{BufReader, Cursor};

use hush_fuzz::Sandbox;
use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let sb = Sandbox::new();
    let dest = sb.path("dest");
    std::fs::create_dir(&dest).expect("create dest");
    let reader = hush_oci::archive::decompress(BufReader::new(Cursor::new(data.to_vec())))
        .expect("in-memory read");
    let r = hush_oci::layer::apply_layer(reader, &dest, LIMIT);
    hush_fuzz::debug("apply_layer", &r);
    if let Err(e) = r {
        let _ = e.to_string();
    }
    sb.assert_only(&["dest"]);
});
