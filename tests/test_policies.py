"""The policy corpus parser: clauses come out whole, and every problem names its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.policies import Clause, CorpusError, corpus_fingerprint, load_corpus

EXAMPLE_CORPUS = Path(__file__).resolve().parents[1] / "scanner" / "data" / "policies"  # the bundled copy

GIFTS = """# Gifts Policy

Intro text that belongs to no clause.

## GIFT-1 Who may send Gifts

Only adults may send Gifts.

### Examples

- A teen account sees no gift panel.

## GIFT-3.1 Vulnerable viewers

Never ask a viewer in debt for Gifts.
"""


def corpus(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    for name, body in files.items():
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        (folder / name).write_bytes(data)
    return folder


def test_clauses_carry_policy_location_and_text(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"gifts.md": GIFTS})
    first, second = load_corpus(folder)
    assert first == Clause("GIFT-1", "Who may send Gifts", "Gifts Policy", str(folder / "gifts.md"), 5,
                           "Only adults may send Gifts.\n\n### Examples\n\n- A teen account sees no gift panel.")
    assert (second.id, second.title, second.line) == ("GIFT-3.1", "Vulnerable viewers", 13)
    assert second.text == "Never ask a viewer in debt for Gifts."


def test_heading_without_id_names_file_and_line(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"gifts.md": "# Gifts\n\n## GIFT3 Limits\n\nText.\n"})
    with pytest.raises(CorpusError) as error:
        load_corpus(folder)
    assert (error.value.path, error.value.line) == (folder / "gifts.md", 3)
    assert str(error.value) == f"{folder / 'gifts.md'}:3: heading '## GIFT3 Limits' has no clause ID like GIFT-3"


def test_duplicate_ids_name_both_places(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"a.md": "# A\n## X-1 One\ntext\n", "b.md": "# B\n\n## X-1 Again\ntext\n"})
    with pytest.raises(CorpusError, match=r"b\.md:3: duplicate clause ID X-1; first defined at .*a\.md:2"):
        load_corpus(folder)


def test_clause_without_text_is_rejected(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"a.md": "# A\n## X-1 One\n\n## X-2 Two\ntext\n"})
    with pytest.raises(CorpusError, match=r"a\.md:2: clause X-1 has no text"):
        load_corpus(folder)


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"a.md": "# A\n## X-1 One\nCaf\xe9\n".encode("latin-1")})
    with pytest.raises(CorpusError, match=r"a\.md:3: not valid UTF-8"):
        load_corpus(folder)


def test_clause_before_policy_title_is_rejected(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"a.md": "## X-1 One\ntext\n"})
    with pytest.raises(CorpusError, match=r"a\.md:1: clause X-1 comes before"):
        load_corpus(folder)


def test_folder_without_clauses_or_missing(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no clauses found"):
        load_corpus(corpus(tmp_path, {"readme.md": "# Only a title\n\nprose\n"}))
    with pytest.raises(CorpusError, match="policy folder not found"):
        load_corpus(tmp_path / "nowhere")


def test_headings_inside_code_fences_are_text(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"a.md": "# A\n## X-1 One\n```\n## not a heading\n```\n"})
    assert "## not a heading" in load_corpus(folder)[0].text


def test_fingerprint_follows_names_and_contents(tmp_path: Path) -> None:
    folder = corpus(tmp_path, {"gifts.md": GIFTS})
    before = corpus_fingerprint(folder)
    assert corpus_fingerprint(folder) == before
    (folder / "gifts.md").write_text(GIFTS + "More.\n", encoding="utf-8")
    changed = corpus_fingerprint(folder)
    assert changed != before
    (folder / "gifts.md").rename(folder / "gifts2.md")
    assert corpus_fingerprint(folder) != changed


def test_example_corpus_loads() -> None:
    clauses = load_corpus(EXAMPLE_CORPUS)
    assert len(clauses) == 65
    assert {"GIFT-3", "GIFT-3.1", "TAX-3"} <= {c.id for c in clauses}
    assert all(c.policy.startswith("Streamly") and c.text for c in clauses)
