"""Stream a multipart upload to a temp file, hashing and counting as it goes (R2).

The body is never held in memory and never spooled anywhere but our data
directory's tmp/; crossing the byte cap stops the read and answers 413 at once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.server.errors import ApiError
from edgekit.server.store import Store
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

FILE_FIELD = "file"
_MAX_FIELD_BYTES = 1024


@dataclass
class Upload:
    path: Path
    sha256: str
    size: int
    filename: str | None
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def too_large(limit: int, seen: int | None = None) -> ApiError:
    details = {"max_upload_bytes": limit}
    if seen is not None:
        details["received_at_least"] = seen
    return ApiError(413, "upload_too_large", f"upload is larger than this server's cap of {limit:,} bytes",
                    {**details, "fix": "raise EDGEKIT_SERVER_MAX_UPLOAD_BYTES on the server or upload a smaller "
                                       "artifact"})


async def receive(request: Request, store: Store, max_bytes: int) -> Upload:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "multipart_required",
                       f"uploads are multipart/form-data with a '{FILE_FIELD}' part; got "
                       f"{request.headers.get('content-type')!r}",
                       {"fix": f"curl -F {FILE_FIELD}=@model.onnx URL/v1/artifacts"})
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise too_large(max_bytes, int(declared))

    fd, path = store.temp_file()
    out = os.fdopen(fd, "wb")
    state = _PartState(out, max_bytes)
    parser = MultipartParser(params[b"boundary"], state.callbacks())
    ok = False
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if state.error:
                raise state.error
        parser.finalize()
        if state.error:
            raise state.error
        if not state.got_file:
            raise ApiError(422, "file_missing", f"the multipart body has no '{FILE_FIELD}' part",
                           {"fields": sorted(state.fields), "fix": f"send the model as the '{FILE_FIELD}' part"})
        if state.size == 0:
            raise ApiError(422, "artifact_empty", "the uploaded file is empty", {"filename": state.filename})
        ok = True
    except (ApiError, OSError):  # OSError: the disk, not the client (ENOSPC -> 507 in the router)
        raise
    except Exception as e:  # the multipart parser's own errors: a malformed body
        raise ApiError(400, "malformed_multipart", f"cannot parse the multipart body: {e}") from e
    finally:
        out.close()
        if not ok:
            path.unlink(missing_ok=True)
    return Upload(path, state.hasher.hexdigest(), state.size, state.filename, state.fields)


class _PartState:
    def __init__(self, out, max_bytes: int):
        self.out, self.max_bytes = out, max_bytes
        self.hasher = hashlib.sha256()
        self.size = 0
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.got_file = False
        self.error: ApiError | None = None
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._is_file = False
        self._buf = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._begin, "on_header_field": self._hfield, "on_header_value": self._hvalue,
            "on_header_end": self._hend, "on_headers_finished": self._hdone, "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._buf = {}, bytearray()

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _hend(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _hdone(self) -> None:
        _, opts = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = opts.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = self._name == FILE_FIELD
        if self._is_file:
            if self.got_file:
                self.error = ApiError(422, "file_repeated", f"send exactly one '{FILE_FIELD}' part")
            self.got_file = True
            # A name for display only: never used as a path.
            self.filename = opts.get(b"filename", b"").decode("utf-8", "replace")[:255] or None

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.error:
            return
        if self._is_file:
            chunk = data[start:end]
            self.size += len(chunk)
            if self.size > self.max_bytes:
                self.error = too_large(self.max_bytes, self.size)
                return
            self.hasher.update(chunk)
            self.out.write(chunk)
        else:
            self._buf += data[start:end]
            if len(self._buf) > _MAX_FIELD_BYTES:
                self.error = ApiError(422, "field_too_long", f"form field {self._name!r} is over "
                                      f"{_MAX_FIELD_BYTES} bytes", {"field": self._name})

    def _end(self) -> None:
        if not self._is_file and self._name:
            self.fields[self._name] = self._buf.decode("utf-8", "replace")
