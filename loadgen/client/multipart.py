"""``files=``: a multipart/form-data body as requests encodes it (pure but for reading file objects).

Form fields (``data=``) come first, then the files. A file is a value (bytes, str or an object with
``read()``) or a tuple ``(filename, content[, content_type[, headers]])``; a bare value is named after
the file object's ``name`` (its base name) or, failing that, after the field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

_ESCAPES = {10: "%0A", 13: "%0D", 34: "%22"}  # LF, CR and '"' in a quoted parameter (the HTML5 rule)
_OWN_FIELDS = ("Content-Disposition", "Content-Type", "Content-Location")  # set by the part itself


def new_boundary() -> str:
    """A fresh random boundary (32 hex digits): one per request."""
    return os.urandom(16).hex()


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    """(key, value) pairs of a mapping or a list of pairs (requests' `to_key_val_list`)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, bool, int)):
        raise ValueError(f"cannot encode objects that are not 2-tuples: {value!r}")
    return list(value.items()) if isinstance(value, Mapping) else list(value)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _param(name: str, value: Any) -> str:
    return f'{name}="{_text(value).translate(_ESCAPES)}"'


def _filename(obj: Any) -> str | None:
    """The base name of a file object's ``name``, unless it is a pseudo-name such as ``<stdin>``."""
    name = getattr(obj, "name", None)
    if isinstance(name, (str, bytes)) and name and name[:1] not in ("<", b"<") and name[-1:] not in (">", b">"):
        return _text(os.path.basename(name))
    return None


def _part(name: Any, data: Any, filename: Any = None, ctype: Any = None, headers: Any = None) -> bytes:
    """One part after its boundary line: header lines, blank line, content, CRLF."""
    disposition = "form-data; " + _param("name", name)
    if filename is not None:
        disposition += "; " + _param("filename", filename)
    lines = [f"Content-Disposition: {disposition}"]
    if ctype:
        lines.append(f"Content-Type: {ctype}")
    for key, value in (headers or {}).items():
        if key not in _OWN_FIELDS and value:
            lines.append(f"{key}: {value}")
    if isinstance(data, int):
        data = str(data)
    content = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + content + b"\r\n"


def encode_multipart(data: Any, files: Any, boundary: str | None = None) -> tuple[bytes, str]:
    """The body and Content-Type for ``files=`` plus the form fields of ``data=`` (a mapping or pairs;
    a str or bytes ``data`` raises `ValueError`, as in requests)."""
    if isinstance(data, (str, bytes)):
        raise ValueError("data= must be form fields (a dict or pairs) when files= is given, not a string")
    boundary = boundary or new_boundary()
    parts: list[bytes] = []
    for key, values in _pairs(data):  # as form_pairs, but every value through str() (requests' rule here)
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = (values,)
        parts.extend(_part(key, v if isinstance(v, bytes) else str(v)) for v in values if v is not None)
    for field, value in _pairs(files):
        filename = ctype = headers = None
        if isinstance(value, (tuple, list)):
            if len(value) == 2:
                filename, content = value
            elif len(value) == 3:
                filename, content, ctype = value
            else:
                filename, content, ctype, headers = value
        else:
            filename, content = _filename(value) or field, value
        if content is None:
            continue
        if hasattr(content, "read") and not isinstance(content, (str, bytes, bytearray)):
            content = content.read()
        parts.append(_part(field, content, filename, ctype, headers))
    delimiter = f"--{boundary}\r\n".encode("latin-1")
    body = b"".join(delimiter + p for p in parts) + f"--{boundary}--\r\n".encode("latin-1")
    return body, f"multipart/form-data; boundary={boundary}"
