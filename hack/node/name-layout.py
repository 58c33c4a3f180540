#!/usr/bin/env python3
"""name-layout.py LAYOUT NAME OUT: the OCI image layout LAYOUT (as `make image` writes
target/image/oci) as a tar at OUT whose index names its image NAME, so that
`ctr images import` stores it under that reference (the layout itself names nothing).
The blobs are the layout's own, unchanged: the image keeps its digest."""

import io
import json
import os
import sys
import tarfile


def main():
    layout, name, out = sys.argv[1:4]
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    if len(index["manifests"]) != 1:
        sys.exit(f"{layout}/index.json has {len(index['manifests'])} images, want 1")
    annotations = index["manifests"][0].setdefault("annotations", {})
    annotations["io.containerd.image.name"] = name
    index_bytes = json.dumps(index).encode()
    with tarfile.open(out, "w") as tar:
        tar.add(os.path.join(layout, "oci-layout"), "oci-layout")
        tar.add(os.path.join(layout, "blobs"), "blobs")
        info = tarfile.TarInfo("index.json")
        info.size = len(index_bytes)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(index_bytes))


if __name__ == "__main__":
    main()
