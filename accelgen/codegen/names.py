"""Identifiers for generated C++, tcl and file names: sanitised, bounded and unique.

Names from the model (ONNX node and tensor names) may hold anything: quotes, ``*/``,
newlines, ``#include``, backslashes, non-ASCII letters, hundreds of characters. Nothing
of them reaches generated text except through :func:`identifier` (``[A-Za-z0-9_]``, not
starting with a digit, no double underscore, not a keyword, at most ``MAX_LEN``
characters; a truncated name keeps a hash of the original so different long names stay
different) or :func:`comment_text` (a bounded, single-line rendering for ``//`` comments).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from accelgen.templating import comment_text

__all__ = ["MAX_LEN", "Namer", "comment_text", "identifier"]

MAX_LEN = 48

_NOT_IDENT = re.compile(r"[^A-Za-z0-9]+")

# C++ keywords and names the generated code or its headers already use
RESERVED = frozenset(
    """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char16_t char32_t class
    compl const constexpr const_cast continue decltype default delete do double dynamic_cast else enum
    explicit export extern false float for friend goto if inline int long mutable namespace new noexcept
    not not_eq nullptr operator or or_eq private protected public register reinterpret_cast return short
    signed sizeof static static_assert static_cast struct switch template this thread_local throw true try
    typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq main
    accelgen hls std ap_int ap_uint reps""".split()
)


def identifier(name: str, *, max_len: int = MAX_LEN, fallback: str = "x") -> str:
    """A C/C++/tcl-safe identifier derived from ``name`` (not yet unique: see :class:`Namer`)."""
    text = str(name)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    ident = _NOT_IDENT.sub("_", ascii_text).strip("_") or fallback
    if ident[0].isdigit():
        ident = f"n{ident}"
    if ident.lower() in RESERVED:
        ident = f"{ident}_n"
    if len(ident) > max_len:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        ident = f"{ident[: max_len - 9].rstrip('_')}_{digest}"
    return ident


class Namer:
    """Hands out identifiers unique within one generated design."""

    def __init__(self, reserved: tuple[str, ...] = ()) -> None:
        self._used: set[str] = {r.lower() for r in reserved}

    def unique(self, base: str) -> str:
        ident = identifier(base)
        candidate, n = ident, 2
        while candidate.lower() in self._used:  # case-insensitive: file names on macOS/Windows
            suffix = f"_{n}"
            candidate = f"{ident[: MAX_LEN - len(suffix)]}{suffix}"
            n += 1
        self._used.add(candidate.lower())
        return candidate
