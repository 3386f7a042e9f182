"""The report's markdown read as GitHub reads it, for the tests: fenced code blocks by the
CommonMark rules, and tables with their cells split at unescaped pipes."""
from __future__ import annotations

import re
from dataclasses import dataclass

# CommonMark: up to 3 spaces, then 3 or more backticks (an info string without any) or tildes.
OPENING = re.compile(r"^ {0,3}(`{3,}(?=[^`]*$)|~{3,})(.*)$")
LINE_END = re.compile(r"\r\n|\r|\n")  # all three end a line in CommonMark
SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")


@dataclass
class CodeBlock:
    info: str
    body: str  # the lines between the fences, with their own line endings
    closed: bool  # False: no closing fence, so the block ran to the end of the document


def lines(markdown: str) -> list[str]:
    return LINE_END.split(markdown)


def _lines_with_ends(markdown: str) -> list[tuple[str, str]]:
    parts = LINE_END.split(markdown)
    ends = LINE_END.findall(markdown) + [""]
    return list(zip(parts, ends))


def parse_fences(markdown: str) -> tuple[list[str], list[CodeBlock]]:
    """The lines outside fenced code blocks, and the blocks. A block closes at a line of its own
    fence character, at least as long as its opening, with only spaces after, up to 3 in."""
    outside: list[str] = []
    blocks: list[CodeBlock] = []
    current: tuple[str, str, list[tuple[str, str]]] | None = None  # (fence, info, body lines)
    for line, end in _lines_with_ends(markdown):
        if current is None:
            opening = OPENING.match(line)
            if opening:
                current = (opening.group(1), opening.group(2).strip(), [])
            else:
                outside.append(line)
            continue
        fence, info, body = current
        closing = re.fullmatch(r" {0,3}(" + re.escape(fence[0]) + r"{%d,}) *" % len(fence), line)
        if closing:
            blocks.append(CodeBlock(info, _join(body), True))
            current = None
        else:
            body.append((line, end))
    if current is not None:
        blocks.append(CodeBlock(current[1], _join(current[2]), False))
    return outside, blocks


def _join(body: list[tuple[str, str]]) -> str:
    """The lines as written, without the line ending that precedes the closing fence."""
    return "".join(line + end for line, end in body[:-1]) + (body[-1][0] if body else "")


def tables(markdown: str) -> list[list[str]]:
    """Every markdown table: runs of consecutive lines starting with a pipe."""
    found, current = [], []
    for line in lines(markdown) + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found


def cells(row: str) -> int:
    """A row's cell count: GitHub (cmark-gfm) splits at a pipe with no backslash before it."""
    return len(re.split(r"(?<!\\)\|", row)) - 2
