#!/usr/bin/env python3
"""Write the committed tar seeds of the `layer` and `archive` fuzz targets (run from fuzz/).

Small on purpose: each exercises one reader path (entry kinds, whiteouts, links, pax and GNU
long names, gzip; a docker-archive with a `docker save`-style linked layer; an OCI layout).
"""
import gzip
import hashlib
import io
import json
import tarfile

tarfile.RECORDSIZE = 512  # no padding to 10 KiB: seeds stay small


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, arg in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif kind == "file":
                ti.size, ti.mode = len(arg), 0o644
                t.addfile(ti, io.BytesIO(arg))
            elif kind in ("sym", "hard"):
                ti.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                ti.linkname = arg
                t.addfile(ti)
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
                t.addfile(ti)
    return buf.getvalue()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


layer = tar_bytes([
    ("a", "dir", None),
    ("a/f", "file", b"hello\n"),
    ("a/l", "sym", "f"),
    ("a/h", "hard", "a/f"),
    ("a/.wh.gone", "file", b""),
    ("b/.wh..wh..opq", "file", b""),
    ("b/p", "fifo", None),
    ("./c/../d/" + "n" * 120, "file", b"long pax name"),
])
write("corpus/layer/kinds.tar", layer)
write("corpus/layer/kinds.tar.gz", gzip.compress(layer, mtime=0))
# Whiteouts that name no file: refused (once, `.wh...` deleted the destination's parent).
write("corpus/layer/whiteout-dotdot.tar", tar_bytes([
    (".wh...", "file", b""), ("a/.wh..", "file", b""), ("a/.wh.", "file", b"")]))
write("corpus/layer/gnu-longname.tar",
      tar_bytes([("x/" + "y" * 150, "file", b"z")], fmt=tarfile.GNU_FORMAT))

# docker save: manifest.json, config, layers, repeated layers linked to the first.
inner = tar_bytes([("etc", "dir", None), ("etc/os-release", "file", b"ID=fuzz\n")])
diff = "sha256:" + hashlib.sha256(inner).hexdigest()
config = json.dumps({
    "architecture": "amd64", "os": "linux", "config": {},
    "rootfs": {"type": "layers", "diff_ids": [diff, diff]},
}).encode()
chex = hashlib.sha256(config).hexdigest()
manifest = json.dumps([{
    "Config": f"blobs/sha256/{chex}", "RepoTags": ["fuzz:latest"],
    "Layers": ["blobs/sha256/" + diff[7:], "l2/layer.tar"],
}]).encode()
write("corpus/archive/docker-save.tar", tar_bytes([
    ("blobs/sha256/" + diff[7:], "file", inner),
    ("blobs/sha256/" + chex, "file", config),
    ("l2/layer.tar", "sym", "../blobs/sha256/" + diff[7:]),
    ("manifest.json", "file", manifest),
]))

mdoc = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + chex, "size": len(config)},
                   "layers": [{"digest": diff, "size": len(inner)}]}).encode()
mhex = hashlib.sha256(mdoc).hexdigest()
index = json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json",
     "digest": "sha256:" + mhex, "size": len(mdoc)}]}).encode()
write("corpus/archive/oci-layout.tar", tar_bytes([
    ("oci-layout", "file", b'{"imageLayoutVersion":"1.0.0"}'),
    ("index.json", "file", index),
    ("blobs/sha256/" + mhex, "file", mdoc),
    ("blobs/sha256/" + chex, "file", config),
    ("blobs/sha256/" + diff[7:], "file", inner),
]))
