"""Static files served from memory by the ASGI app, with fingerprinted URLs and long-lived caching.

Chosen over a library for speed: the usual static-files middleware has no async code and would
serialise the thread-free app, and servestatic reads each file through a short-lived thread
(measured on our machines). Our assets are a few small
files, so they are read once at startup and answered straight from the loop. In production a reverse
proxy or CDN may serve ``static/`` instead (``SERVE_STATIC=false``).
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def _load(root: Path) -> dict[str, StaticFile]:
    files: dict[str, StaticFile] = {}
    if not root.is_dir():
        return files
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            body = path.read_bytes()
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if content_type.startswith("text/") or content_type in {"application/javascript", "image/svg+xml"}:
                content_type += "; charset=utf-8"
            digest = hashlib.sha256(body).hexdigest()[:12]
            files[path.relative_to(root).as_posix()] = StaticFile(body, content_type, f'"{digest}"')
    return files


@cache
def fingerprint(root: str, name: str) -> str:
    """A short hash of a static file's content, for cache-busting URLs (``?v=...``)."""
    path = Path(root) / name
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    except OSError:
        return "missing"


def security_headers(scope) -> list[tuple[bytes, bytes]]:
    """The headers Django's security middleware adds, for the answers the ASGI app gives itself
    (static files, 404, 413, 503) without going through Django."""
    from django.conf import settings

    headers = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", settings.X_FRAME_OPTIONS.encode()),
               (b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode()), *_policy_headers()]
    forwarded = dict(scope.get("headers", ())).get(b"x-forwarded-proto", b"")
    secure = scope.get("scheme") == "https" or (
        getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is not None and forwarded == b"https")
    if secure and settings.SECURE_HSTS_SECONDS:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        headers.append((b"strict-transport-security", value.encode()))
    return headers


@cache
def _policy_headers() -> tuple[tuple[bytes, bytes], ...]:
    """The site's CSP (no nonce: these answers run no script) and Permissions-Policy, built once: an SVG or a
    text file opened on its own is a document too, and a 413 is shown by the browser like a page."""
    from django.conf import settings
    from django.utils.csp import CSP, build_policy

    headers = []
    if settings.SECURE_CSP:
        headers.append((str(CSP.HEADER_ENFORCE).lower().encode(), build_policy(settings.SECURE_CSP).encode()))
    if settings.PERMISSIONS_POLICY:
        headers.append((b"permissions-policy", settings.PERMISSIONS_POLICY.encode()))
    return tuple(headers)


class StaticFiles:
    def __init__(self, root: Path | str, url_prefix: str) -> None:
        self.prefix = url_prefix
        self.files = _load(Path(root))

    def matches(self, path: str) -> bool:
        return path.startswith(self.prefix)

    async def __call__(self, scope, receive, send) -> None:
        static = self.files.get(scope["path"][len(self.prefix) :])
        if static is None:
            await send_file(scope, send, None)
            return
        versioned = b"v=" in scope.get("query_string", b"")
        await send_file(scope, send, static.body, content_type=static.content_type.encode(),
                        etag=static.etag.encode(),
                        cache_control=b"public, max-age=31536000, immutable" if versioned else b"public, max-age=3600")


async def send_file(scope, send, body: bytes | None, *, content_type: bytes = b"", etag: bytes = b"",
                    cache_control: bytes = b"") -> None:
    """A file's answer from the ASGI app (static files, uploaded images): 404 without ``body``, 405 for a method
    other than GET and HEAD, 304 when the client holds this ETag, else the bytes with the site's headers."""
    method = scope["method"]
    if body is None or method not in ("GET", "HEAD"):
        status = 404 if body is None else 405
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), *security_headers(scope)]})
        await send({"type": "http.response.body", "body": b"Not found" if status == 404 else b""})
        return
    headers = [(b"content-type", content_type), (b"etag", etag), *security_headers(scope),
               (b"cache-control", cache_control)]
    if_none_match = dict(scope["headers"]).get(b"if-none-match")
    if if_none_match is not None and etag in if_none_match:
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
