"""Parse the internal policy corpus: a folder of Markdown files, one policy per file.

`# Title` names a policy; each `## ID Title` heading starts a clause (ID like `GIFT-3` or
`GIFT-3.1`) whose text runs to the next `#` or `##` heading. Deeper headings (`###`) stay
inside the clause, since they structure a clause rather than start a new one. Problems are
raised as `CorpusError` naming file and line, because the policy team edits these files by
hand and needs to know exactly where to look.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from scanner.errors import ScanError

CLAUSE_HEADING = re.compile(r"^##(?!#)\s*(?P<rest>.*?)\s*#*\s*$")
POLICY_HEADING = re.compile(r"^#(?!#)\s*(?P<title>.*?)\s*#*\s*$")
CLAUSE_ID = re.compile(r"^(?P<id>[A-Z][A-Z0-9]*(?:-[A-Z][A-Z0-9]*)*-\d+(?:\.\d+)*)(?:\s+(?P<title>.*))?$")
log = logging.getLogger(__name__)

FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Clause:
    """One clause of one policy, with where it was found so messages can point at it."""

    id: str
    title: str
    policy: str
    file: str
    line: int
    text: str

    @property
    def embedding_text(self) -> str:
        """What a clause is encoded as, everywhere (matching, search's clause route, alerts)."""
        return f"{self.title}. {self.text}"

    @property
    def text_hash(self) -> str:
        """Identifies this version of the clause's wording (title and text), for its history and reviews."""
        return hashlib.sha256(f"{self.title}\n{self.text}".encode("utf-8")).hexdigest()[:16]

    @classmethod
    def from_row(cls, row: dict) -> "Clause":
        return cls(row["id"], row["title"] or "", row["policy"] or "", row["file"] or "", row["line"] or 0, row["text"] or "")

    def row(self) -> dict[str, object]:
        return {"id": self.id, "policy": self.policy, "title": self.title, "file": self.file, "line": self.line,
                "text": self.text}


class CorpusError(ScanError):
    """The corpus cannot be used; `path` and `line` say where (line is None for whole files)."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


def policy_files(folder: Path) -> list[Path]:
    """The Markdown files of the corpus, in a stable order so IDs and hashes are reproducible."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(folder, None, "policy folder not found; set `policies:` in sources.yaml")
    return sorted(p for p in folder.rglob("*.md") if p.is_file())


def corpus_fingerprint(folder: Path) -> str:
    """A sha256 over file names and contents, so callers can tell when to reload the corpus."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in policy_files(folder):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(_read_bytes(path) + b"\0")
    return digest.hexdigest()


def load_corpus(folder: Path) -> list[Clause]:
    """Every clause in the folder, in file then document order; rejects duplicate IDs."""
    folder = Path(folder)
    clauses: list[Clause] = []
    seen: dict[str, Clause] = {}
    for path in policy_files(folder):
        found = parse_policy(path, _decode(path))
        if not found:
            log.warning("%s: no clause headings (like '## GIFT-3 Title'); the file is ignored", path)
        for clause in found:
            first = seen.get(clause.id)
            if first is not None:
                raise CorpusError(path, clause.line,
                                  f"duplicate clause ID {clause.id}; first defined at {first.file}:{first.line}")
            seen[clause.id] = clause
            clauses.append(clause)
    if not clauses:
        raise CorpusError(folder, None, "no clauses found; each clause needs a heading like '## GIFT-3 Title'")
    return clauses


def parse_policy(path: Path, markdown: str) -> list[Clause]:
    """The clauses of one Markdown policy; `path` is only used for locations and messages."""
    clauses: list[Clause] = []
    policy: str | None = None
    open_clause: tuple[str, str, int] | None = None
    body: list[str] = []
    in_fence = False

    def close() -> None:
        if open_clause is None:
            return
        clause_id, title, line = open_clause
        text = "\n".join(body).strip()
        if not text:
            raise CorpusError(path, line, f"clause {clause_id} has no text under its heading")
        clauses.append(Clause(clause_id, title, policy or "", str(path), line, text))

    for number, raw in enumerate(markdown.splitlines(), start=1):
        if FENCE.match(raw):
            in_fence = not in_fence
        heading = None if in_fence else (CLAUSE_HEADING.match(raw) or POLICY_HEADING.match(raw))
        if heading is None:
            body.append(raw)
            continue
        close()
        body = []
        open_clause = None
        if heading.re is POLICY_HEADING:
            policy = heading["title"]
            continue
        open_clause = _clause_heading(path, number, raw, heading["rest"], policy)
    close()
    return clauses


def _clause_heading(path: Path, number: int, raw: str, rest: str, policy: str | None) -> tuple[str, str, int]:
    """(id, title, line) of a `## ID Title` heading, or a CorpusError saying what is wrong with it."""
    found = CLAUSE_ID.match(rest)
    if found is None:
        raise CorpusError(path, number, f"heading '{raw.strip()}' has no clause ID like GIFT-3")
    if policy is None:
        raise CorpusError(path, number, f"clause {found['id']} comes before the policy's '# Title' heading")
    return found["id"], (found["title"] or "").strip(), number


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(path, None, f"cannot read policy file: {exc.strerror or exc}") from exc


def _decode(path: Path) -> str:
    """The file as text; policies must be UTF-8 so that IDs and evidence survive round trips."""
    data = _read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CorpusError(path, line, "not valid UTF-8; re-save the file as UTF-8 "
                                      f"(check with: file -i {path})") from exc
