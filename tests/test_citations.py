"""Every UB 2.0 section the code and the docs cite is a heading of the spec (issue 11: cited
sections must exist).  The list of section numbers (tests/data/spec_sections.txt) was read from
the spec text's headings and ../shared/ub-notes/spec-index.md; it holds numbers only."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {ln.strip() for ln in (ROOT / "tests" / "data" / "spec_sections.txt").read_text()
            .splitlines() if ln.strip() and not ln.startswith("#")}
# a section sign and a number, not followed by more of a name ("§10a" is a note's own section)
CITE = re.compile(r"§ ?((?:[0-9]+|[A-H])(?:\.[0-9]+)*)(?![0-9A-Za-z])")
# citations of our own notes (the ns-3-UB dialect notes number their sections too)
NOT_SPEC = re.compile(r"(dialect|notes?|spec-facts|ns3-ub-dialect(\.md)?)[^§\n]{0,12}$", re.I)


def _sources():
    for pattern in ("ubpkt/**/*.py", "cli/**/*.py", "docs/*.md", "dissectors/*.py",
                    "dissectors/*.lua", "README.md", "bench/*.py", "captures/*.py",
                    "tests/**/*.py"):
        for path in ROOT.glob(pattern):
            if path.name != "test_citations.py" and ".venv" not in path.parts:
                yield path


def cited():
    for path in _sources():
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in CITE.finditer(text):
            if NOT_SPEC.search(text[max(0, m.start() - 40):m.start()]):
                continue
            yield path.relative_to(ROOT), text.count("\n", 0, m.start()) + 1, m.group(1)


def test_the_section_list_is_plausible():
    assert {"5.3.7", "6.2.1", "7.4.2.1.3", "4.7.3.2.2", "B.2.4.1"} <= SECTIONS
    assert "3.11" not in SECTIONS and "10.4.3.5" not in SECTIONS


def test_every_cited_section_exists():
    bad = [f"{p}:{line}: §{s}" for p, line, s in cited() if s not in SECTIONS]
    assert not bad, "sections the spec does not have:\n" + "\n".join(bad)
