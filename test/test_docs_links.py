"""The documentation holds together: every relative link in README.md and docs/*.md points to a file that exists
(and to a heading that exists, for `file.md#anchor`), the README stays a front page, and the user docs carry no
internal references (issue numbers, the team's notes)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SRC = re.compile(r"<(?:img|a)\b[^>]*?(?:src|href)=\"([^\"]+)\"", re.I)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code (links and headings there are not links/headings)."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def anchors(text: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation but '-' and '_' dropped, spaces -> '-', repeats get -1, -2."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(text: str) -> list[str]:
    prose = _prose(text)
    return LINK.findall(prose) + HTML_SRC.findall(FENCE.sub("", text))


def test_anchor_rule_matches_github():
    text = "# A `~/reset`, b\n## Bad input, bursts and restarts\n```bash\n# not a heading\n```\n## A `~/reset`, b\n"
    assert anchors(text) == {"a-reset-b", "bad-input-bursts-and-restarts", "a-reset-b-1"}
    assert links("[x](a.md#b) `[no](c.md)` ![p](img.png) <img src=\"i.png\" align=right>") == \
        ["a.md#b", "img.png", "i.png"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page: Path):
    text = page.read_text()
    broken = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
            broken.append(f"{target}: no heading with id {anchor!r} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail into docs/"
    assert max(len(line) for line in lines) <= 220, "a README line that long is a table row that belongs in docs/"


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "BENCHMARKS.md"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_user_docs_have_no_internal_references(page: Path):
    """Users do not have the team's issue tracker or notes: no 'issue N', no ARCHITECTURE.md, no shared/ notes."""
    text = page.read_text()
    found = re.findall(r"\b(?i:issues?) #?\d+|ARCHITECTURE|shared/notes|\.\./shared/", text)
    assert not found, f"{page.relative_to(ROOT)} refers to internal documents: {found}"
