//! One way out per output type: a docker-archive ([`docker`], `docker load`'s format), an OCI
//! layout or its archive ([`oci`]), and the image's filesystem as a directory or a tar
//! ([`local`], buildx's `local` and `tar` outputs). Each writes from the store, to a writer
//! where the output is a stream (a file, standard output), so that the binary only chooses
//! where the bytes go.

pub mod docker;
pub mod local;
pub mod oci;

use std::collections::HashMap;
use std::io::Write;

use crate::error::IoContext;
use crate::Result;

/// The annotations an OCI index gives an image's descriptor for its name, as BuildKit's and
/// docker's exporters write them: the image-spec's `ref.name` (the tag) and containerd's full
/// name.
fn name_annotations(name: &str) -> HashMap<String, String> {
    let name = crate::store::normalize_name(name).unwrap_or_else(|_| name.to_string());
    let tag = name
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or(name.clone(), |(_, t)| t.to_string());
    [
        ("org.opencontainers.image.ref.name".to_string(), tag),
        ("io.containerd.image.name".to_string(), name),
    ]
    .into()
}

/// An OCI index of `manifests`, its keys sorted (annotations are a `HashMap`: written as they
/// are, two exports of one image would differ).
fn index_json(manifests: Vec<oci_spec::image::Descriptor>) -> Vec<u8> {
    let index = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(oci_spec::image::MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .expect("an index has every field");
    let sorted = serde_json::to_value(&index).expect("an index serializes");
    serde_json::to_vec(&sorted).expect("an index serializes")
}

/// `oci-layout`: the layout's version (image-spec `image-layout.md`).
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Append a regular file or a directory to a tar.
fn append_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    dir: bool,
) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_size(data.len() as u64);
    b.append_data(&mut h, name, data).ctx("write", name)
}
