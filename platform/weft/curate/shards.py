"""WebDataset shards written in memory: what the corpus builders (`weft.demo.corpus`,
`weft.data.emoji`, `weft.data.imagepairs`) hand to storage."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable


def tar_shard(samples: Iterable[tuple[str, dict[str, bytes]]]) -> bytes:
    """A tar of `key.ext` members, a sample's members together (WebDataset's layout: a key
    holds no dot, the extension follows the first one)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for key, parts in samples:
            for ext, data in parts.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
