"""The distribution API (OCI distribution spec / Docker Registry HTTP API v2) on http.client:
manifests and blobs as bytes and streams, each checked against its digest; uploads and mounts.

Why not requests/docker-py here: start-up time. A registry scan should cost
about what `skopeo inspect` costs, so this path imports only http.client, ssl
and json. What the documents mean is image/'s business: this returns bytes.
https://github.com/opencontainers/distribution-spec/blob/main/spec.md
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.parse

import msgspec

from .errors import NotFound, RegistryError, reason
from .streams import Stats, TransferLimits, VerifyingStream
from .tls import api_host, certs_dir, is_loopback
from .transport import DEFAULT_TIMEOUT, MAX_ERROR_BODY, Transport
from .wire import checked_digest

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[:2]
MAX_MANIFEST = 4 * 2**20

__all__ = ["DEFAULT_TIMEOUT", "INDEX_TYPES", "MANIFEST_TYPES", "FetchedManifest", "NotFound",
           "RegistryClient", "RegistryError", "Stats", "TransferLimits", "VerifyingStream", "api_host",
           "certs_dir", "is_loopback"]


class FetchedManifest(msgspec.Struct, frozen=True):
    """A manifest as the registry served it: its bytes (digest checked), and the media type it named."""

    raw: bytes
    digest: str
    media_type: str | None

    @property
    def size(self) -> int:
        return len(self.raw)


class RegistryClient(Transport):
    """The API of one registry host over a Transport; safe for one thread (make one per reference)."""

    def manifest_bytes(self, repository: str, reference: str) -> FetchedManifest:
        """A manifest or index by tag or digest; its bytes are checked against the digest asked for (or
        the one the registry names). image/ reads what they say."""
        if ":" in reference:  # a digest from an index or the user: checked before it goes into the URL
            checked_digest(reference, f"{self.host}/{repository}")
        response = self.request("GET", f"/v2/{repository}/manifests/{reference}",
                                headers={"Accept": ", ".join(MANIFEST_TYPES)},
                                scope=f"repository:{repository}:pull", kind="manifest")
        if response.status == 404:
            self.discard(response)
            raise NotFound(f"{self.host}/{repository}: no manifest {reference} (tag or digest unknown)")
        body = self._body(response, f"manifest {reference}", MAX_MANIFEST)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = (reference if reference.startswith("sha256:")
                    else response.getheader("Docker-Content-Digest"))
        if expected and expected.startswith("sha256:") and expected != digest:
            raise RegistryError(f"{self.host}/{repository}: manifest {reference} does not match its digest "
                                f"{expected} (refused)")
        self.stats.received(len(body))
        media_type = (response.getheader("Content-Type") or "").split(";")[0].strip() or None
        return FetchedManifest(body, digest, media_type)

    def blob(self, repository: str, digest: str, limit: int = 64 * 2**20, size: int | None = None) -> bytes:
        with self.open_blob(repository, digest, size) as stream:
            parts: list[bytes] = []
            received = 0
            while chunk := stream.read(1 << 20):
                parts.append(chunk)
                received += len(chunk)
                if received > limit:
                    raise RegistryError(f"{self.host}/{repository}: blob {digest} is larger than expected")
        return b"".join(parts)

    def open_blob(self, repository: str, digest: str, size: int | None = None) -> VerifyingStream:
        checked_digest(digest, f"{self.host}/{repository}")
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}",
                                scope=f"repository:{repository}:pull", kind="blob")
        if response.status == 404:
            self.discard(response)
            raise NotFound(f"{self.host}/{repository}: blob {digest} is missing (deleted from the registry?)")
        if response.status != 200:
            self.discard(response)
            raise RegistryError(f"{self.host}/{repository}: blob {digest}: HTTP {response.status}",
                                response.status)
        return VerifyingStream(response, digest, f"{self.host}/{repository}", self.stats, size=size,
                               limits=self.limits)

    def blob_range(self, repository: str, digest: str, byte_range: str, length: int) -> bytes | None:
        """`length` bytes of a blob named by an HTTP `Range` (`bytes=-4096`, `bytes=0-17`), or None when
        the registry will not serve them: a 200 (the whole blob) is closed unread, its connection dropped.
        The bytes are not checked against the digest (only a whole blob can be): callers judge them."""
        checked_digest(digest, f"{self.host}/{repository}")
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}", headers={"Range": byte_range},
                                scope=f"repository:{repository}:pull", kind="blob-range")
        if response.status == 200:
            response.close()  # never read a whole layer for its last bytes
            self.close()
            return None
        if response.status != 206:
            self.discard(response)
            if response.status == 404:
                raise NotFound(f"{self.host}/{repository}: blob {digest} is missing")
            raise RegistryError(f"{self.host}/{repository}: blob {digest} range: HTTP {response.status}",
                                response.status)
        try:
            body = response.read(length + 1)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise RegistryError(f"{self.host}/{repository}: blob {digest} range broke off: {reason(exc)}") \
                from None
        if len(body) != length or not response.isclosed() or \
                not _range_is(response.getheader("Content-Range", ""), byte_range, length):
            response.close()
            self.close()
            return None  # not the bytes asked for (a multipart answer, a wrong range): no claim from them
        self.stats.received(len(body))
        return body

    def sibling(self) -> RegistryClient:
        """A client for another thread: same host, options, credentials, token and transfer counts,
        its own connection."""
        other = RegistryClient(self.host, insecure=self.insecure, credentials=self.auth.explicit,
                               timeout=self.timeout, limits=self.limits, session=self.session,
                               policy=self.policy)
        self.auth.share(other.auth)
        other.stats = self.stats
        return other

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}",
                                scope=f"repository:{repository}:pull", kind="blob-check")
        self.discard(response)
        return response.status == 200

    def push_blob(self, repository: str, data: bytes, *, mount_from: str | None = None) -> str:
        """Upload (or cross-repository mount) a blob; returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        scope = f"repository:{repository}:pull,push"
        if self.has_blob(repository, digest):
            return digest
        query = f"?mount={digest}&from={mount_from}" if mount_from else ""
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/{query}", scope=scope,
                                kind="upload", headers={"Content-Length": "0"})
        self.discard(response)
        if response.status == 201:
            return digest  # mounted: no bytes moved
        if response.status != 202 or not response.getheader("Location"):
            raise RegistryError(f"{self.host}/{repository}: upload refused (HTTP {response.status})",
                                response.status)
        location = urllib.parse.urljoin(f"{self.scheme}://{self.host}/", response.getheader("Location"))
        parsed = urllib.parse.urlsplit(location)
        separator = "&" if parsed.query else "?"
        path = f"{parsed.path}?{parsed.query}{separator}digest={digest}" if parsed.query else \
            f"{parsed.path}?digest={digest}"
        response = self.request("PUT", path, body=data, scope=scope, kind="upload",
                                headers={"Content-Type": "application/octet-stream",
                                         "Content-Length": str(len(data))})
        self.discard(response)
        if response.status != 201:
            raise RegistryError(f"{self.host}/{repository}: blob upload failed (HTTP {response.status})",
                                response.status)
        return digest

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> None:
        """Cross-repository mount: the registry links the blob, no bytes are sent."""
        if self.has_blob(repository, digest):
            return
        scope = f"repository:{repository}:pull,push"
        query = f"?mount={digest}&from={from_repository}"
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/{query}", scope=scope, kind="mount",
                                headers={"Content-Length": "0"})
        self.discard(response)
        if response.status != 201:
            raise RegistryError(f"{self.host}: cannot mount {digest} from {from_repository} into "
                                f"{repository} (HTTP {response.status}); imagefix does not re-upload layers",
                                response.status)

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        scope = f"repository:{repository}:pull,push"
        response = self.request("PUT", f"/v2/{repository}/manifests/{reference}", body=raw, scope=scope,
                                kind="manifest-put", headers={"Content-Type": media_type,
                                                              "Content-Length": str(len(raw))})
        body = self.read_body(response, MAX_ERROR_BODY, "its answer")
        if response.status != 201:
            detail = body.decode("utf-8", "replace")[:200]
            raise RegistryError(f"{self.host}/{repository}: manifest {reference} refused "
                                f"(HTTP {response.status}: {detail})", response.status)
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def _body(self, response: http.client.HTTPResponse, what: str, limit: int) -> bytes:
        if response.status != 200:
            self.discard(response)
            raise RegistryError(f"{self.host}: {what}: HTTP {response.status}", response.status)
        try:
            body = self.read_body(response, limit + 1, what)
        except RegistryError:
            self.close()
            raise
        if len(body) > limit:
            raise RegistryError(f"{self.host}: {what} is larger than {limit} bytes")
        return body


def _range_is(content_range: str, asked: str, length: int) -> bool:
    """Whether `Content-Range: bytes A-B/TOTAL` is the suffix or prefix `asked` for (TOTAL may be `*`)."""
    unit, _, spec = content_range.partition(" ")
    span, _, total = spec.partition("/")
    first, _, last = span.partition("-")
    if unit != "bytes" or not first.isdigit() or not last.isdigit():
        return False
    start, end = int(first), int(last)
    if end - start + 1 != length:
        return False
    if asked.startswith("bytes=-"):
        return not total.isdigit() or end == int(total) - 1
    return start == int(asked.removeprefix("bytes=").split("-")[0] or 0)
