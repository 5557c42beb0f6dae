"""Python source as generated code needs it: a string literal that reads well, text that may
stand inside a docstring, and code indented into a function body."""

from __future__ import annotations

import io
import tokenize


def triple_quoted(text: str) -> str:
    """A string literal for ``text``: readable triple quotes when that is safe, else ``repr``."""
    plain = all(ch.isprintable() or ch in "\n\t" for ch in text)
    if plain and '"""' not in text and not text.endswith('"') and "\\" not in text:
        return f'"""\n{text}\n"""'
    return repr(text)


def in_docstring(text: str) -> str:
    """``text`` as it may stand inside our triple-quoted docstring: quotes, backslashes and line
    breaks escaped, so it can never end the string."""
    escaped = []
    for ch in text:
        if ch in '\\"':
            escaped.append("\\" + ch)
        elif ch.isprintable():
            escaped.append(ch)
        else:
            escaped.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(escaped)


def indented(code: str) -> list[str]:
    """The code's lines indented one level, except lines inside multi-line strings (kept as is)."""
    inside: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.STRING and token.end[0] > token.start[0]:
            inside.update(range(token.start[0] + 1, token.end[0] + 1))
    return [
        line if number in inside else (f"    {line}" if line.strip() else "")
        for number, line in enumerate(code.splitlines(), start=1)
    ]
