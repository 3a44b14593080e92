"""Uploaded images (event posters, association logos): checked and re-encoded with Pillow, stored through
Django's storage API (``STORAGES["images"]``: the file system under the data folder by default, an
S3-compatible bucket by setting), named by their content so that their addresses never change.

An upload is refused before anything is written when it is not a JPEG, PNG, WebP or GIF that Pillow
decodes in full (an SVG, a text file, a truncated JPEG), when it is larger than IMAGE_MAX_BYTES, or when it
declares more than IMAGE_MAX_PIXELS pixels (checked on the header, before the pixels are decoded: a
50-megapixel PNG of one colour is a few kilobytes that would take 150 MB to decode). What is kept is the
pixels only, redrawn into a new image: no EXIF (GPS position, camera, date), no ICC profile, no comment, no
second frame. The orientation its EXIF gave is applied first, so that a phone's portrait photo stays upright.

Each image is kept in a few widths (WebP, for ``srcset``) and one JPEG for share previews (chat apps and
social sites read JPEG everywhere). A stored image is named by a hash of its pixels' encoding, and the
database keeps one short key, ``<hash>-<width>x<height>``, from which ``ImageRef`` derives every address.

Decoding, resizing and encoding is CPU work (measured: a 40-megapixel JPEG 0.5 s and 60 MB, decoded at a
fraction of its size; a 40-megapixel PNG, which has no such shortcut, 1.2 s and 190 MB): it runs in one thread of
``image_gate`` (hyperion/threadgate.py; Pillow releases the GIL while it decodes and resizes), with the
storage's writes, which Django's storage API only offers as blocking calls. Only an upload pays that: no
page ever reads an image, and the images themselves are answered by ``hyperion.mediafiles`` from memory.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import formats
from django.utils.translation import gettext_lazy as _

from hyperion.threadgate import ThreadGate

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# The widths kept for srcset, narrower than the image: a list's thumbnail on a phone, a card on a wide screen,
# the event page (on a 2x screen). The image itself is kept at its width too, at most MAX_WIDTH.
WIDTHS = (160, 320, 640)
MAX_WIDTH, MAX_HEIGHT = 1280, 1600
MIN_SIDE = 64  # smaller than this is no poster, and would look broken once scaled up
MAX_RATIO = 5  # a banner of 5:1 is still a picture; beyond, a sliver
SHARE_WIDTH = 1200  # what share previews ask for
WEBP_QUALITY, JPEG_QUALITY = 80, 85
FOLDER = "images"
_KEY = re.compile(r"(?P<hash>[0-9a-f]{20})-(?P<width>[0-9]{1,4})x(?P<height>[0-9]{1,4})")


class ImageRefused(Exception):
    """The upload is not an image the site keeps; ``message`` says why, for the form. It is raised in the image
    thread, where no language is active: the message is translated when it is read, on the request's side."""

    def __init__(self, message, **params) -> None:
        super().__init__()
        self._message, self.params = message, params

    def __str__(self) -> str:
        return self.message

    @property
    def message(self) -> str:
        return str(self._message) % {name: _number(value) for name, value in self.params.items()}


def _number(value):
    """8.0 → "8", 0.02 → "0.02" or "0,02" in French: the active language's decimal separator."""
    if not isinstance(value, float):
        return value
    return f"{value:g}".replace(".", formats.get_format("DECIMAL_SEPARATOR"))


image_gate = ThreadGate("image", running=lambda: 1, waiting=lambda: settings.IMAGE_QUEUE, seconds_per_call=2.0)


def storage():
    return storages["images"]


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A stored image, from its key: its addresses in each width, and its proportions (for the width and
    height attributes that keep the page from jumping while it loads)."""

    hash: str
    width: int
    height: int

    @classmethod
    def parse(cls, key: str | None) -> ImageRef | None:
        return _parsed(key) if key else None

    @property
    def key(self) -> str:
        return f"{self.hash}-{self.width}x{self.height}"

    @property
    def widths(self) -> tuple[int, ...]:
        return widths_for(self.width)

    def height_at(self, width: int) -> int:
        return max(1, round(self.height * width / self.width))

    def url(self, width: int) -> str:
        return _url(storage(), variant_name(self.hash, width))

    def srcset(self) -> str:
        return _srcset(storage(), self)

    def url_for(self, width: int) -> str:
        """The narrowest kept width that covers ``width`` (the ``src`` of a thumbnail)."""
        return self.url(next((kept for kept in self.widths if kept >= width), self.widths[-1]))

    @property
    def share_url(self) -> str:
        return _url(storage(), share_name(self.hash))

    @property
    def share_size(self) -> tuple[int, int]:
        width = min(self.width, SHARE_WIDTH)
        return width, self.height_at(width)


# Pages name the same few images over and over, and a storage's url() is ~10 µs (FileSystemStorage quotes and
# joins; S3Storage more): the answers are kept per storage object (a new one after a settings change). A few
# thousand short strings at most.
@lru_cache(maxsize=4096)
def _url(target, name: str) -> str:
    return target.url(name)


@lru_cache(maxsize=1024)
def _srcset(target, image: ImageRef) -> str:
    return ", ".join(f"{_url(target, variant_name(image.hash, width))} {width}w" for width in image.widths)


@lru_cache(maxsize=4096)
def _parsed(key: str) -> ImageRef | None:
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    return ImageRef(match["hash"], int(match["width"]), int(match["height"]))


def widths_for(width: int) -> tuple[int, ...]:
    return (*(kept for kept in WIDTHS if kept < width), width)


def variant_name(image_hash: str, width: int) -> str:
    return f"{FOLDER}/{image_hash}-{width}.webp"


def share_name(image_hash: str) -> str:
    return f"{FOLDER}/{image_hash}-share.jpg"


# The names of an image's files: its hash, then a width or "share" (hyperion/mediafiles.py serves these only).
FILE_NAME = re.compile(rf"{FOLDER}/(?P<hash>[0-9a-f]{{20}})-(?:[0-9]{{1,4}}\.webp|share\.jpg)")


def hash_of(name: str) -> str | None:
    """The image a stored file belongs to; None for a name that is not an image's file."""
    match = FILE_NAME.fullmatch(name)
    return None if match is None else match["hash"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """An accepted upload, re-encoded and not stored yet: ``files`` by storage name."""

    ref: ImageRef
    files: dict[str, bytes]


def prepare(data: bytes) -> Prepared:
    """Check and re-encode an upload (CPU work: call it through ``image_gate``); ImageRefused when it is not
    an image the site keeps. Writes nothing.

    The full-size pixels are held once: a JPEG is decoded at the smallest scale that still covers what is kept
    (``draft``: a 40-megapixel photo at an eighth of its size), turned upright and shrunk in place, and only the
    kept size is copied. Copying the full size first cost ~570 MB and 5 s for a 40-megapixel upload."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(data) > settings.IMAGE_MAX_BYTES:
        raise ImageRefused(_("The image is too large: %(megabytes)s MB at most."),
                           megabytes=settings.IMAGE_MAX_BYTES / 1_000_000)
    try:
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as opened:
            _check_size(*opened.size)  # from the header: nothing decoded yet
            opened.seek(0)  # an animation's first frame only
            longest = max(MAX_WIDTH, MAX_HEIGHT)  # the EXIF orientation may turn it: either side may be the width
            opened.draft(None, (longest, longest))
            opened.load()  # decodes every pixel: a truncated or corrupt file fails here
            ImageOps.exif_transpose(opened, in_place=True)
            opened.thumbnail((MAX_WIDTH, MAX_HEIGHT), Image.Resampling.LANCZOS, reducing_gap=3.0)
            has_alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
            mode = "RGBA" if has_alpha else "RGB"
            converted = opened.convert(mode)
    except Image.DecompressionBombError as error:  # Pillow's own bound, far above ours: refused the same way
        raise ImageRefused(_("The image has too many pixels: %(megapixels)s megapixels at most."),
                           megapixels=settings.IMAGE_MAX_PIXELS / 1_000_000) from error
    except UnidentifiedImageError as error:
        raise ImageRefused(_("This file is not an image: send a JPEG, PNG, WebP or GIF file.")) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageRefused(_("This image is damaged or incomplete: it could not be read.")) from error
    # Nothing but pixels: a new image built from them carries none of the file's metadata.
    pixels = Image.frombytes(mode, converted.size, converted.tobytes())
    full = _encode_webp(pixels)
    image_hash = hashlib.sha256(full).hexdigest()[:20]
    ref = ImageRef(image_hash, pixels.width, pixels.height)
    files = {variant_name(image_hash, pixels.width): full}
    for width in ref.widths[:-1]:
        files[variant_name(image_hash, width)] = _encode_webp(
            pixels.resize((width, ref.height_at(width)), Image.Resampling.LANCZOS))
    share_width, share_height = ref.share_size
    share = pixels.resize((share_width, share_height), Image.Resampling.LANCZOS) if share_width != pixels.width \
        else pixels
    if has_alpha:  # JPEG has no transparency: on white, like the site's pages
        flat = Image.new("RGB", share.size, (255, 255, 255))
        flat.paste(share, mask=share.getchannel("A"))
        share = flat
    buffer = io.BytesIO()
    share.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    files[share_name(image_hash)] = buffer.getvalue()
    return Prepared(ref, files)


def _check_size(width: int, height: int) -> None:
    if width * height > settings.IMAGE_MAX_PIXELS:
        raise ImageRefused(_("The image has too many pixels: %(megapixels)s megapixels at most."),
                           megapixels=settings.IMAGE_MAX_PIXELS / 1_000_000)
    if min(width, height) < MIN_SIDE:
        raise ImageRefused(_("The image is too small: at least %(pixels)d pixels on each side."), pixels=MIN_SIDE)
    if max(width, height) > MAX_RATIO * min(width, height):  # kept, it would be a sliver a few pixels wide
        raise ImageRefused(_("The image is too long and thin: one side may be at most %(ratio)d times the other."),
                           ratio=MAX_RATIO)


def _encode_webp(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=WEBP_QUALITY, method=4)
    return buffer.getvalue()


def store(prepared: Prepared) -> None:
    """Write the prepared files (blocking: through ``image_gate``). A name already there holds the same image
    (names are hashes of the content): written again all the same, which is harmless and renews its date, so
    that ``manage.py pruneimages`` never takes an old file that a new upload has just made used again. The
    file system storage overwrites (``allow_overwrite``); a storage that renamed instead would break the
    address, and is refused.

    Nothing is removed when the write that was to use the image is then refused (the event deleted meanwhile):
    another upload of the same image may use these very files, and pruneimages takes what nothing uses."""
    target = storage()
    for name, body in prepared.files.items():
        saved = target.save(name, ContentFile(body))
        if saved != name:
            target.delete(saved)
            raise ImproperlyConfigured(f"the image storage saved {name} as {saved}: it must overwrite")


def prepare_and_store(data: bytes) -> ImageRef:
    prepared = prepare(data)
    store(prepared)
    return prepared.ref


async def accept(data: bytes) -> ImageRef:
    """An upload checked, re-encoded and stored, off the event loop, in the image gate (GateFull: a 429)."""
    return await image_gate.run(prepare_and_store, data)
