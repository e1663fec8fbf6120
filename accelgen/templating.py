"""Rendering templates/ safely: the one Jinja environment and one escape per target language.

Templates hold structure; every value from outside (a model's file name, a board file's
strings, names from the model) reaches generated text through a filter that makes it data
in the target language, never code:

``py``       a Python string literal (``repr``): the value round-trips through ``ast``
``tcl``      one Tcl word whose substitution is the value itself (no ``$``, ``[]``, braces)
``cpp``      a C++ string literal (octal escapes, no trigraphs)
``comment``  a bounded single-line text for ``//`` and ``#`` comments of any language
``text``     a single line of Markdown text (specials backslash-escaped)
``code``     the inside of a Markdown code span, safe to paste into a shell (no specials)

Identifiers are made by :func:`accelgen.codegen.names.identifier` (C++, tcl, file names)
and :func:`accelgen.rtl.names.identifier` (Verilog) and need no escape; JSON is written
with :func:`json.dumps`.
"""

from __future__ import annotations

import functools
import math
import re

import jinja2

from accelgen.errors import InternalError
from accelgen.resources import data_dir

_NOT_COMMENT = re.compile(r"[^A-Za-z0-9 _.:/()\[\],=+-]")
_TCL_PLAIN = re.compile(r"[A-Za-z0-9_.,:/+=@%-]")
_CPP_PLAIN = re.compile(r"[A-Za-z0-9 _.,:/+=@%#()<>\[\]{}*&|^~!;'-]")
_NOT_CODE = re.compile(r"[^A-Za-z0-9_.,:/+=@%-]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~$-])")


def py_literal(value) -> str:
    """A Python literal whose value is ``value`` (a str, int, bool or finite float)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InternalError(f"template: {value!r} has no Python literal")
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    raise InternalError(f"template: {type(value).__name__} is not rendered as a Python literal")


def tcl_word(value) -> str:
    """One Tcl word that substitutes to exactly ``str(value)``: every character that is
    not plainly literal is backslash-escaped (``\\n``, ``\\uXXXX`` for non-ASCII)."""
    out = []
    for ch in str(value):
        code = ord(ch)
        if _TCL_PLAIN.match(ch):
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")  # a backslash-newline would be a line continuation
        elif 0x20 <= code < 0x7F:
            out.append("\\" + ch)
        else:  # exactly four digits, so the next character stays literal; beyond the BMP a
            # UTF-16 surrogate pair, which Tcl 8.6 (and Vivado's) reads back as the character
            units = ch.encode("utf-16-be", "surrogatepass")
            out.extend(f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2))
    return "".join(out) or '""'


def cpp_string(value) -> str:
    """A C++ string literal holding the UTF-8 bytes of ``value``."""
    out = []
    for ch in str(value):
        if _CPP_PLAIN.match(ch):
            out.append(ch)
        else:  # exactly three octal digits, so a following digit is not absorbed
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8", "surrogatepass"))
    return '"' + "".join(out) + '"'


def comment_text(value, max_len: int = 72) -> str:
    """A one-line rendering of ``value`` that is safe inside a comment of C++, Verilog,
    tcl, Python or a Makefile: letters, digits and a few punctuation characters only (no
    backslash, which would continue the comment onto the next line, no ``?`` of trigraphs,
    no ``*/``, no braces that tcl counts even in comments)."""
    text = _NOT_COMMENT.sub("_", str(value))
    return text if len(text) <= max_len else text[: max_len - 3] + "..."


def markdown_text(value, max_len: int = 200) -> str:
    """One line of Markdown showing ``value``: control characters and line breaks shown
    as escapes, Markdown and HTML specials backslash-escaped."""
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(value))
    if len(shown) > max_len:
        shown = shown[: max_len - 3] + "..."
    return _MD_SPECIAL.sub(r"\\\1", shown)


def markdown_code(value, max_len: int = 120) -> str:
    """The inside of a Markdown code span showing ``value`` (a part, a board name: what a
    reader may paste into a shell): letters, digits and ``_.,:/+=@%-`` only, anything else
    shown as ``_``, since a code span shows backslash escapes literally."""
    text = _NOT_CODE.sub("_", str(value))
    return text if len(text) <= max_len else text[: max_len - 3] + "..."


def _fail(message: str):
    raise InternalError(f"template: {message}")


FILTERS = {
    "py": py_literal,
    "tcl": tcl_word,
    "cpp": cpp_string,
    "comment": comment_text,
    "text": markdown_text,
    "code": markdown_code,
}


@functools.lru_cache(maxsize=4)
def environment(subdir: str = "") -> jinja2.Environment:
    """The Jinja environment of templates/ (or a subdirectory): StrictUndefined, the
    escape filters above, ``fail()``; compiled templates are cached."""
    root = data_dir("templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root / subdir if subdir else root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(FILTERS)
    env.globals["fail"] = _fail
    return env
