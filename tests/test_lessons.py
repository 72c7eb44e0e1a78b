"""The lesson check: what a teacher relies on, read from the files (no kernel, a few seconds).

Every notebook opens with questions, objectives, its time and prerequisites and
closes with keypoints, five check questions and challenges with solutions; every
solution is Python that calls the helpers as they are; every relative link and
image in the README, the top-level docs and the notebooks resolves to a file of
the repo and every image has alt text; INSTRUCTORS.md's schedules are built
from the notebooks' own minutes, and its failures quote sentences the course
really prints.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

from helpers.course import REPO, notebooks

NOTEBOOKS = notebooks()
DOCS = sorted(REPO.glob("*.md"))
GUIDE = REPO / "INSTRUCTORS.md"

TIME = re.compile(r"\*\*Time:\*\*\s*teaching\s+(\d+)\s*min\s*·\s*exercises\s+(\d+)\s*min")
RUN_TIME = re.compile(r"\*\*Run time:\*\*\s*quick\s+(?P<quick>[^·\n]+?)\s*·\s*laptop\s+(?P<laptop>[^·\n]+?)"
                      r"\s*·\s*GPU\s+(?P<gpu>[^·\n]+?)\s*$", re.M)
MEASURED = re.compile(r"\d+(\.\d+)?\s*(s|min|h)\b")
ANSWER = "<details><summary>Answer</summary>"
SOLUTION = "<details><summary>Solution</summary>"


# ---------------------------------------------------------------- reading the lessons

def cells(path: Path) -> list:
    return nbformat.read(str(path), as_version=4).cells


def find(path: Path, heading: str) -> tuple[int, str]:
    """(index, source) of the markdown cell that starts with `heading`; fails the test when there is none."""
    found = [(i, c.source) for i, c in enumerate(cells(path)) if c.cell_type == "markdown"
             and c.source.lstrip().startswith(heading)]
    assert len(found) == 1, f"{path.name}: {len(found)} markdown cells start with {heading!r}; a lesson has exactly one"
    return found[0]


def items(text: str, label: str) -> list[str]:
    """The list items under a bold `label` line, up to the next blank line."""
    block = re.search(rf"\*\*{label}\*\*\s*\n((?:\s*(?:[-*]|\d+\.)\s+.+\n?)+)", text)
    return [re.sub(r"^\s*(?:[-*]|\d+\.)\s+", "", line).strip() for line in block.group(1).splitlines()
            if line.strip()] if block else []


def minutes(path: Path) -> tuple[int, int]:
    """(teaching, exercises) minutes from the lesson's **Time:** line."""
    match = TIME.search(find(path, "## Overview")[1])
    assert match, f"{path.name}: the overview has no line like '**Time:** teaching 20 min · exercises 15 min'"
    return int(match[1]), int(match[2])


def folded(text: str, summary: str) -> list[str]:
    """What each <details> with this summary holds, stripped."""
    return [m.strip() for m in re.findall(re.escape(summary) + r"(.*?)</details>", text, re.S)]


def challenges(path: Path) -> list[tuple[str, str]]:
    """(title, text) of every '### Challenge' in the lesson's challenges cell."""
    text = find(path, "## Challenges")[1]
    parts = re.split(r"^### ", text, flags=re.M)[1:]
    return [(p.splitlines()[0], p) for p in parts if p.startswith("Challenge")]


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def code_indices(path: Path) -> list[int]:
    return [i for i, c in enumerate(cells(path)) if c.cell_type == "code"]


# ---------------------------------------------------------------- opening and closing

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_opens_with_questions_objectives_time_and_prerequisites(path):
    index, text = find(path, "## Overview")
    assert index < code_indices(path)[0], f"{path.name}: the overview must come before the first code cell"
    questions = items(text, "Questions")
    assert len(questions) >= 2 and all(q.endswith("?") for q in questions), f"{path.name}: questions {questions}"
    assert len(items(text, "Objectives")) >= 2, f"{path.name}: fewer than two objectives"
    teaching, exercises = minutes(path)
    assert teaching > 0 and exercises > 0
    run = RUN_TIME.search(text)
    assert run, f"{path.name}: no line like '**Run time:** quick 45 s (...) · laptop ... · GPU ...'"
    assert MEASURED.match(run["quick"]), f"{path.name}: the quick run time is not a measured figure: {run['quick']!r}"
    prerequisites = re.search(r"\*\*Prerequisites:\*\*(.+)", text)
    assert prerequisites and re.search(r"\b(CPU|GPU)\b", prerequisites[1]), f"{path.name}: prerequisites name no device"
    before = f"{int(path.name[:2]) - 1:02d}"
    assert path.name.startswith("01") or before in prerequisites[1], f"{path.name}: prerequisites do not name notebook {before}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_closes_with_keypoints_five_questions_and_challenges(path):
    last_code = code_indices(path)[-1]
    keypoints_at, keypoints = find(path, "## Keypoints")
    questions_at, questions = find(path, "## Check your understanding")
    challenges_at, _ = find(path, "## Challenges")
    assert last_code < keypoints_at < questions_at < challenges_at, f"{path.name}: the closing parts come after the code, in order"
    assert len(re.findall(r"^\s*[-*]\s+\S", keypoints, re.M)) >= 3, f"{path.name}: fewer than three keypoints"
    assert len(re.findall(r"^\d+\.\s+\S", questions, re.M)) == 5, f"{path.name}: not five numbered check questions"
    answers = folded(questions, ANSWER)
    assert len(answers) == 5 and all(answers), f"{path.name}: every check question needs a folded, non-empty answer"
    found = challenges(path)
    assert 2 <= len(found) <= 3, f"{path.name}: {len(found)} challenges; a lesson has two or three"
    assert any(c.source.lstrip().startswith(("## What to try", "## What to try next")) for c in cells(path)
               if c.cell_type == "markdown"), f"{path.name}: the 'What to try' part is gone"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_challenge_has_a_solution_with_code_to_paste(path):
    for title, text in challenges(path):
        solutions = folded(text, SOLUTION)
        assert len(solutions) == 1 and solutions[0], f"{path.name}, {title}: no folded solution"
        blocks = code_blocks(solutions[0])
        assert blocks, f"{path.name}, {title}: the solution has no ```python block a learner can paste"
        for block in blocks:
            ast.parse(block)  # a SyntaxError names the line


def helpers_calls(block: str):
    """(what, object, keywords) for every call in `block` of a name imported from helpers (or an attribute of one)."""
    tree, names = ast.parse(block), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                names[alias.asname or alias.name] = getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("helpers"):
                    importlib.import_module(alias.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func, obj = node.func, None
        if isinstance(func, ast.Name) and func.id in names:
            obj, what = names[func.id], func.id
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in names:
            owner = names[func.value.id]
            assert hasattr(owner, func.attr), f"{func.value.id} has no {func.attr}"
            obj, what = getattr(owner, func.attr), f"{func.value.id}.{func.attr}"
        if obj is not None:
            yield what, obj, [k.arg for k in node.keywords if k.arg]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_call_the_helpers_as_they_are(path):
    """A solution that names a helper or keyword that no longer exists would fail in front of the class."""
    for title, text in challenges(path):
        for block in code_blocks("".join(folded(text, SOLUTION))):
            for what, obj, keywords in helpers_calls(block):
                try:
                    signature = inspect.signature(obj)
                except (TypeError, ValueError):  # a builtin without a signature: nothing to check
                    continue
                takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
                unknown = [k for k in keywords if k not in signature.parameters and not takes_any]
                assert not unknown, f"{path.name}, {title}: {what}() takes no keyword {unknown}"


# ---------------------------------------------------------------- links and images

def markdown_of(path: Path) -> str:
    """A doc's markdown, or a notebook's markdown cells, without code (a link in code is not a link)."""
    text = path.read_text() if path.suffix == ".md" else "\n\n".join(
        c.source for c in cells(path) if c.cell_type == "markdown")
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def targets(text: str) -> list[str]:
    inline = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)", text)
    reference = re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", text, re.M)
    html = re.findall(r"<(?:img|a|source|video)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", text, re.I)
    return inline + reference + html


def is_relative(target: str) -> bool:
    return not re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//|#)", target)


LESSON_FILES = [p for p in DOCS + NOTEBOOKS]


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.name)
def test_every_relative_link_and_image_resolves_to_a_file_in_the_repo(path):
    broken = []
    for target in filter(is_relative, targets(markdown_of(path))):
        local = unquote(target.split("#")[0].split("?")[0])
        resolved = (path.parent / local).resolve()
        if not local or not resolved.exists() or REPO.resolve() not in resolved.parents:
            broken.append(target)
    assert not broken, f"{path.name}: links to nothing in the repo: {broken}"


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda p: p.name)
def test_every_image_has_alt_text(path):
    text = markdown_of(path)
    missing = [src for alt, src in re.findall(r"!\[([^\]]*)\]\(([^)]*)\)", text) if not alt.strip()]
    for tag in re.findall(r"<img\b[^>]*>", text, re.I):
        alt = re.search(r"\balt\s*=\s*[\"']([^\"']*)[\"']", tag, re.I)
        if not alt or not alt[1].strip():
            missing.append(tag)
    assert not missing, f"{path.name}: images without alt text: {missing}"


def test_the_link_check_sees_a_broken_link_and_a_missing_alt(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("[a](nowhere.md) ![](img.png) <img src='y.png'> `[code](not-a-link)`\n```\n[b](also-code)\n```\n")
    found = targets(markdown_of(doc))
    assert found == ["nowhere.md", "img.png", "y.png"]


# ---------------------------------------------------------------- the instructor's guide

def guide_section(heading: str) -> str:
    text = GUIDE.read_text()
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"INSTRUCTORS.md has no section '## {heading}'"
    return match[1]


def schedule_rows(section: str) -> list[tuple[int, int, str]]:
    """(start minute, minutes, counts-as) of each row of a schedule table: | 9:00 | 15 | what | 01 teaching |."""
    rows = []
    for start, length, counts in re.findall(r"^\|\s*(\d{1,2}:\d{2})\s*\|\s*(\d+)\s*\|[^|]*\|\s*([^|]*?)\s*\|\s*$",
                                            section, re.M):
        hours, mins = start.split(":")
        rows.append((int(hours) * 60 + int(mins), int(length), counts))
    return rows


@pytest.mark.parametrize("heading, length", [("Schedule: three hours", 180), ("Schedule: a full day", None)])
def test_the_schedules_are_built_from_the_notebooks_minutes(heading, length):
    section = guide_section(heading)
    rows = schedule_rows(section)
    assert len(rows) >= 6, f"{heading}: no schedule table"
    for (start, mins, _), (next_start, _, _) in zip(rows, rows[1:]):
        assert next_start == start + mins, f"{heading}: a row starting at {start // 60}:{start % 60:02d} does not end where the next begins"
    lessons = {p.name[:2]: minutes(p) for p in NOTEBOOKS}
    for number, (teaching, exercises) in lessons.items():
        for part, want in (("teaching", teaching), ("exercises", exercises)):
            got = sum(m for _, m, counts in rows if counts == f"{number} {part}")
            assert got == want, f"{heading}: {number} {part} takes {got} min in the schedule, {want} in the notebook"
    total = sum(m for _, m, _ in rows)
    stated = re.search(r"\*\*Total:\*\*\s*(\d+)\s*min", section)
    assert stated and int(stated[1]) == total, f"{heading}: the rows add up to {total} min, the stated total differs"
    assert length is None or total == length
    teaching = sum(t for t, _ in lessons.values())
    exercises = sum(e for _, e in lessons.values())
    said = re.search(r"\*\*Lessons:\*\*\s*teaching\s+(\d+)\s*min\s*\+\s*exercises\s+(\d+)\s*min", section)
    assert said and (int(said[1]), int(said[2])) == (teaching, exercises), (
        f"{heading}: the notebooks add up to teaching {teaching} min + exercises {exercises} min")


def test_the_guide_gives_the_run_times_the_notebooks_give():
    """The day-before table and each notebook's **Run time:** line say the same, so a new measurement goes in both."""
    section = guide_section("The day before")
    rows = re.findall(r"^\|\s*(\d{2}) [^|]*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$", section, re.M)
    table = {number: tuple(times) for number, *times in rows}
    for path in NOTEBOOKS:
        run = RUN_TIME.search(find(path, "## Overview")[1])
        assert run, f"{path.name}: no **Run time:** line"
        said = (run["quick"], run["laptop"], run["gpu"])
        assert table.get(path.name[:2]) == said, f"INSTRUCTORS.md gives lesson {path.name[:2]} {table.get(path.name[:2])}, the notebook {said}"


@functools.lru_cache(maxsize=1)
def printed_text() -> str:
    """Every string literal in helpers/ and every literal piece of every f-string, joined by NUL (no quote holds one)."""
    pieces = set()
    for source in (REPO / "helpers").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                pieces.add(node.value)
    return "\0".join(sorted(pieces))


def made_of_literals(fragment: str, text: str, shortest: int = 8) -> bool:
    """Whether `fragment` is a run of literals from `text`, each at least `shortest` characters long.

    A message is often built from several literals (a sentence and the advice it
    inserts); each is matched greedily, longest first.
    """
    start = 0
    while start < len(fragment):
        low, high = start, len(fragment)  # the longest fragment[start:end] found in text, by bisection
        while low < high:
            middle = (low + high + 1) // 2
            if fragment[start:middle] in text:
                low = middle
            else:
                high = middle - 1
        if low - start < shortest:
            return False
        start = low
    return True


def test_the_failures_quote_sentences_the_course_prints():
    section = guide_section("Ten failures")
    failures = re.findall(r"^### ", section, re.M)
    assert len(failures) >= 10, f"{len(failures)} failures described; the guide promises ten"
    quotes = [line[1:].strip() for line in section.splitlines() if line.startswith(">")]
    assert len(quotes) >= 8, "most failures quote what the course prints, as a '> ' line"
    text = printed_text()
    fragments = [part.strip(" .,:;\"") for quote in quotes for part in quote.split("…")]
    unknown = [f for f in fragments if len(f) >= 12 and not made_of_literals(f, text)]
    assert not unknown, f"INSTRUCTORS.md quotes what helpers/ never prints: {unknown}"


def test_the_quote_check_can_fail():
    text = printed_text()
    assert made_of_literals("Full-length training on a CPU would take days", text)
    assert not made_of_literals("Full-length training on a CPU would take weeks", text)


def test_the_readme_points_to_the_guide_and_the_architecture_not_to_a_shared_folder():
    readme = (REPO / "README.md").read_text()
    assert "(ARCHITECTURE.md)" in readme and "(INSTRUCTORS.md)" in readme
    assert "shared folder" not in readme and "DESIGN.md" not in readme
