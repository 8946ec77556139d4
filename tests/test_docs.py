"""The repository cites only documents, sections, anchors and tests it contains.

Pure text checks over every tracked (or new, not ignored) text file:
- no citation of the specification files that live outside the repository, nor of
  the shared folder they come from, nor of tracker issues by number ("issue N"):
  the repository's own documentation is under docs/;
- every cited docs/<name>.md exists, every section sign with a number after it names a
  numbered heading of that file and every #anchor after it one of its anchors; a
  numbered section sign that names no document is an error outside docs/ (inside
  docs/ it refers to the numbered protocol page);
- in README.md and docs/*.md: every relative Markdown link points at an existing file
  (and anchor), every repository path they mention exists, and every test they name
  is defined in the tests they point at.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
NUMBERED_DOC = "docs/" + "protocol.md"  # where a bare section number inside docs/ points
SKIP_DIRS = {".git", "results", "figures", "logs", "data", ".snakemake", "__pycache__", ".pytest_cache",
             "build", ".venv"}

# Each pattern is written so that this file's own source does not match it.
OUTSIDE_DOCUMENT = re.compile(r"\b(?:PAPER|METHODS|DESIGN)\.md\b|\.\./shared\b|\bshared/[A-Z]+\.md")
ISSUE_NUMBER = re.compile(r"\b[Ii]ssues?\s+(?:no\.\s*)?#?\d+")
SECTION = r"§\s*\d+(?:\.\d+)*(?:\s*[-–]\s*§?\s*\d+(?:\.\d+)*)?"
CITATION = re.compile(r"(?<![\w/.-])docs/(?P<file>[\w-]+\.md)(?:#(?P<anchor>[\w-]+))?"
                      r"(?P<sections>(?:[\s,]*(?:(?:and|or|to)\s+)?" + SECTION + r")*)")
ONE_SECTION = re.compile(r"§\s*(\d+(?:\.\d+)*)(?:\s*[-–]\s*§?\s*(\d+(?:\.\d+)*))?")
MD_LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
REPO_PATH = re.compile(r"(?<![\w/.{}-])(?P<path>(?:src|tests|benchmarks|workflow|configs|profiles|envs|docs)"
                       r"/[\w/.-]*[\w-]\.(?:py|smk|yaml|yml|md|rst|png|toml))\b")
TEST_FILE = re.compile(r"tests/(test_\w+\.py)")
TEST_NAME = re.compile(r"tests/(?P<file>test_\w+\.py)::(?P<name>test_\w+)|`(?P<bare>test_\w+)`")


def _listed_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                             capture_output=True, check=True, timeout=30).stdout.decode()
        return [p for p in out.split("\0") if p and (REPO / p).is_file()]
    except (OSError, subprocess.SubprocessError):  # no git: walk the tree
        found = []
        for root, dirs, files in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
            found += [str((Path(root) / f).relative_to(REPO)) for f in files]
        return found


@lru_cache(maxsize=None)
def text_files() -> dict[str, str]:
    """Repository-relative path -> text, for every text file (binary files skipped)."""
    out = {}
    for rel in _listed_files():
        raw = (REPO / rel).read_bytes()
        if b"\0" in raw[:8192]:
            continue
        try:
            out[rel.replace(os.sep, "/")] = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


def line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def github_slug(heading: str) -> str:
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@lru_cache(maxsize=None)
def headings(doc: str) -> tuple[set[str], set[str]]:
    """(section numbers, anchors) of a Markdown file: "4", "4.1" from headings such as
    "## 4. Metrics" / "### 4.1 ..."; anchors from GitHub's heading slugs and from
    explicit id="..." / name="..." attributes."""
    text = text_files().get(doc)
    if text is None:
        return set(), set()
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # headings inside code blocks are not headings
    numbers, anchors, seen = set(), set(), {}
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        title = match.group(1)
        number = re.match(r"(\d+(?:\.\d+)*)\.?\s", title)
        if number:
            numbers.add(number.group(1))
        slug = github_slug(title)
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    anchors.update(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))
    return numbers, anchors


def expand(first: str, last: str | None) -> list[str]:
    """"4" -> ["4"]; "1", "3" (a range 1-3) -> ["1", "2", "3"]."""
    if last is None:
        return [first]
    if "." in first or "." in last:
        return [first, last]
    return [str(n) for n in range(int(first), int(last) + 1)]


def citation_problems(rel: str, text: str) -> list[str]:
    problems = []
    covered = []
    for match in CITATION.finditer(text):
        covered.append(match.span("sections"))
        doc = f"docs/{match['file']}"
        where = f"{rel}:{line_of(text, match.start())}"
        if doc not in text_files():
            problems.append(f"{where}: cites {doc}, which is not in the repository")
            continue
        numbers, anchors = headings(doc)
        if match["anchor"] and match["anchor"] not in anchors:
            problems.append(f"{where}: cites {doc}#{match['anchor']}, which {doc} has no anchor for")
        for one in ONE_SECTION.finditer(match["sections"]):
            for number in expand(one[1], one[2]):
                if number not in numbers:
                    problems.append(f"{where}: cites {doc} \u00a7{number}, which {doc} has no section for")
    for one in ONE_SECTION.finditer(text):
        if any(lo <= one.start() < hi for lo, hi in covered):
            continue
        where = f"{rel}:{line_of(text, one.start())}"
        if rel.startswith("docs/") and rel.endswith(".md"):
            numbers, _ = headings(NUMBERED_DOC)
            missing = [n for n in expand(one[1], one[2]) if n not in numbers]
            if missing:
                problems.append(f"{where}: \u00a7{missing[0]} is not a section of {NUMBERED_DOC}")
        else:
            problems.append(f"{where}: \u00a7{one[1]} names no document; cite docs/<name>.md and its section")
    return problems


def link_problems(rel: str, text: str) -> list[str]:
    problems = []
    prose = re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)
    for match in MD_LINK.finditer(prose):
        target = match["target"]
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        where = f"{rel}:{line_of(prose, match.start())}"
        path, _, anchor = target.partition("#")
        dest = rel if not path else os.path.normpath(str(Path(rel).parent / path)).replace(os.sep, "/")
        if dest.startswith("../") or not (REPO / dest).exists():
            problems.append(f"{where}: link to {target}, which is not in the repository")
            continue
        if anchor and dest.endswith(".md") and anchor not in headings(dest)[1]:
            problems.append(f"{where}: link to {target}, which {dest} has no anchor for")
    return problems


def path_and_test_problems(rel: str, text: str) -> list[str]:
    problems = []
    for match in REPO_PATH.finditer(text):
        if not (REPO / match["path"]).exists():
            problems.append(f"{rel}:{line_of(text, match.start())}: mentions {match['path']}, which does not exist")
    # A test name is looked up in the test files named in the same paragraph or list item.
    for block in re.split(r"\n\s*\n|\n(?=\s*[-*|] )", text):
        files = set(TEST_FILE.findall(block))
        for match in TEST_NAME.finditer(block):
            name = match["name"] or match["bare"]
            candidates = [match["file"]] if match["file"] else sorted(files) or sorted(
                p.name for p in (REPO / "tests").glob("test_*.py"))
            if not any(re.search(rf"^\s*(?:async\s+)?def {name}\(", text_files().get(f"tests/{c}", ""),
                                 flags=re.M) for c in candidates):
                problems.append(f"{rel}: names the test {name}, not defined in "
                                f"{', '.join('tests/' + c for c in candidates)}")
    return problems


def test_the_project_documents_exist():
    for doc in ("protocol", "methods", "performance"):
        assert f"docs/{doc}.md" in text_files(), f"docs/{doc}.md is missing"


def test_protocol_sections_are_numbered_like_the_citations_expect():
    numbers, _ = headings(NUMBERED_DOC)
    assert {str(n) for n in range(1, 9)} <= numbers, sorted(numbers)


def test_methods_doc_has_an_anchor_per_method():
    pytest.importorskip("torch")
    from unlearnbench import methods

    _, anchors = headings("docs/methods.md")
    assert [m for m in methods.names() if m not in anchors] == []


def test_no_citation_of_documents_outside_the_repository():
    problems = [f"{rel}:{line_of(text, m.start())}: {m.group(0)!r}"
                for rel, text in text_files().items()
                for pattern in (OUTSIDE_DOCUMENT, ISSUE_NUMBER) for m in pattern.finditer(text)]
    assert problems == [], "cite docs/ instead:\n" + "\n".join(problems)


def test_cited_docs_sections_and_anchors_exist():
    problems = [p for rel, text in text_files().items() for p in citation_problems(rel, text)]
    assert problems == [], "\n".join(problems)


def test_markdown_links_paths_and_tests_exist():
    problems = []
    for rel, text in text_files().items():
        if rel == "README.md" or (rel.startswith("docs/") and rel.endswith(".md")):
            problems += link_problems(rel, text) + path_and_test_problems(rel, text)
    assert problems == [], "\n".join(problems)


# --- the checker itself, on known inputs -----------------------------------------------------


def test_checker_flags_known_bad_citations():
    outside = "see " + "PAPER" + ".md \u00a74 and " + "issue" + " 7"
    assert len(OUTSIDE_DOCUMENT.findall(outside)) == 1 and len(ISSUE_NUMBER.findall(outside)) == 1
    d, s = "docs" + "/", "\u00a7"  # spelled out so that this file does not cite them itself
    text = (f"{d}protocol.md {s}4, {s}99 and {d}protocol.md {s}1-3, {s}2-{s}7; {d}nowhere.md; {d}methods.md#nope; "
            f"{d}methods.md#msg; bare {s}5; {d}protocol.md {s}7-{s}11")
    problems = citation_problems("src/x.py", text)
    assert any(s + "99" in p for p in problems) and any(s + "11" in p for p in problems)  # (protocol.md has 10 sections)
    assert any("nowhere.md" in p for p in problems)
    assert any("#nope" in p for p in problems)
    assert any(s + "5 names no document" in p for p in problems)
    assert len(problems) == 5, problems


def test_github_slug_known_answers():
    assert github_slug("4.1 Per-model metrics") == "41-per-model-metrics"
    assert github_slug("The `base` space (B)") == "the-base-space-b"
    assert github_slug("Training and evaluation against the common idiom") == \
        "training-and-evaluation-against-the-common-idiom"
