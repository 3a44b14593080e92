"""Uploaded images answered by the ASGI app like static files: no database query, no thread, no Django.

Their names carry a hash of their content (hyperion/images.py), so an address never changes meaning: it is
cached for a year as immutable, its ETag is that hash, and a name that is not an image's name is a 404
before the file system is touched (no path from a client ever reaches ``open``). The bytes are kept in
memory, up to IMAGE_MEMORY_BYTES, most recently used first. A file not kept yet is read on the event loop:
an image is a file of tens of kilobytes that the operating system's page cache answers in microseconds,
which costs less than handing the read to a thread and back (and the site's rule is no thread per request).

Used only when the images' storage is the file system (the default). With an S3-compatible storage the
bucket (or the CDN in front of it) serves them at the storage's own URLs, and nothing comes here.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from hyperion.images import hash_of
from hyperion.staticfiles import send_file

_TYPES = {".webp": b"image/webp", ".jpg": b"image/jpeg"}


class MediaFiles:
    def __init__(self, root: Path | str, url_prefix: str, *, memory_bytes: int) -> None:
        self.root = Path(root)
        self.prefix = url_prefix
        self.memory_bytes = memory_bytes
        self.kept: OrderedDict[str, bytes] = OrderedDict()
        self.kept_bytes = 0

    def matches(self, path: str) -> bool:
        return path.startswith(self.prefix)

    def _body(self, name: str) -> bytes | None:
        body = self.kept.get(name)
        if body is not None:
            self.kept.move_to_end(name)
            return body
        try:
            body = (self.root / name).read_bytes()  # a small file, on the loop: see the module's docstring
        except OSError:
            return None
        if len(body) <= self.memory_bytes // 4:
            self.kept[name] = body
            self.kept_bytes += len(body)
            while self.kept_bytes > self.memory_bytes:
                _, dropped = self.kept.popitem(last=False)
                self.kept_bytes -= len(dropped)
        return body

    async def __call__(self, scope, receive, send) -> None:
        name = scope["path"][len(self.prefix):]
        body = self._body(name) if hash_of(name) is not None else None
        if body is None:
            await send_file(scope, send, None)
            return
        await send_file(scope, send, body, content_type=_TYPES[name[name.rindex("."):]],
                        etag=b'"' + name.rsplit("/", 1)[1].encode() + b'"',
                        cache_control=b"public, max-age=31536000, immutable")


def media_files() -> MediaFiles | None:
    """The handler for MEDIA_URL when the images' storage is the file system and SERVE_MEDIA is on (a reverse
    proxy may serve the folder instead); None otherwise."""
    from django.conf import settings
    from django.core.files.storage import FileSystemStorage, storages

    storage = storages["images"]
    if not settings.SERVE_MEDIA or not isinstance(storage, FileSystemStorage):
        return None
    return MediaFiles(storage.location, storage.base_url, memory_bytes=settings.IMAGE_MEMORY_BYTES)
