"""Key dates: every supported language, relative dates, and the distractors that must not count."""

from __future__ import annotations

import time
from datetime import date

import pytest

from scanner.keydates import KeyDate, extract_dates, find_mentions

PUB = date(2027, 2, 1)


def found(text: str, published: date | None = PUB, lang: str | None = None) -> set[tuple[str, str]]:
    return {(k.date.isoformat(), k.type) for k in extract_dates("", text, published, lang)}


@pytest.mark.parametrize("text, expected", [
    ("The amended code takes effect on 1 October 2027.", ("2027-10-01", "effective")),
    ("Sellers must register with the agency by October 1, 2027.", ("2027-10-01", "compliance")),
    ("Responses to the consultation are due by 31 March 2027.", ("2027-03-31", "comments_due")),
    ("Die Verordnung tritt am 1. Juli 2027 in Kraft.", ("2027-07-01", "effective")),
    ("Stellungnahmen können bis zum 15. April 2027 eingereicht werden.", ("2027-04-15", "comments_due")),
    ("Le décret entre en vigueur le 1er mars 2027.", ("2027-03-01", "effective")),
    ("Les observations doivent être transmises avant le 30 avril 2027.", ("2027-04-30", "comments_due")),
    ("La norma entrará en vigor el 1 de septiembre de 2027.", ("2027-09-01", "effective")),
    ("Los operadores deberán inscribirse en el registro hasta el 30 de junio de 2027.", ("2027-06-30", "compliance")),
    ("A resolução entra em vigor em 1º de agosto de 2027.", ("2027-08-01", "effective")),
    ("As contribuições podem ser enviadas até 31 de março de 2027.", ("2027-03-31", "comments_due")),
    ("Il regolamento si applica dal 1 ottobre 2027.", ("2027-10-01", "effective")),
    ("Le osservazioni devono pervenire entro il 15 marzo 2027.", ("2027-03-15", "comments_due")),
    ("De regeling treedt op 1 juli 2027 in werking.", ("2027-07-01", "effective")),
    ("本办法自2027年4月1日起施行。", ("2027-04-01", "effective")),
    ("平台应当于2027年6月30日前完成整改并报告。", ("2027-06-30", "compliance")),
    ("意见反馈截止时间为2027年3月15日。", ("2027-03-15", "comments_due")),
    ("改正後の基準は令和9年4月1日から施行します。", ("2027-04-01", "effective")),
    ("御意見は令和9年3月10日（水）17時までに提出してください。", ("2027-03-10", "comments_due")),
    ("개정 고시는 2027년 3월 31일부터 시행된다.", ("2027-03-31", "effective")),
    ("의견이 있는 단체는 2027년 2월 28일까지 의견을 제출할 수 있다.", ("2027-02-28", "comments_due")),
    ("사업자는 2027년 5월 31일까지 표시 방법을 정비해야 한다.", ("2027-05-31", "compliance")),
])
def test_each_language_states_a_typed_key_date(text: str, expected: tuple[str, str]) -> None:
    assert expected in found(text)


def test_relative_dates_resolve_from_a_stated_or_todays_publication() -> None:
    text = ("The implementing act was published in the Official Journal on 10 March 2027 and enters into force "
            "on the twentieth day following that of its publication.")
    assert ("2027-03-30", "effective") in found(text)
    assert ("2027-04-02", "comments_due") in found("Comments are invited within 60 days after today's publication.")
    assert ("2027-04-30", "compliance") in found(
        "The rules come into force on 1 March 2027. Providers shall register within sixty days of the commencement of these rules.")
    assert ("2027-03-03", "comments_due") in found(
        "La delibera è pubblicata in data odierna. Le osservazioni vanno inviate entro 30 giorni dalla pubblicazione della delibera.")


def test_relative_dates_without_a_known_anchor_are_left_out() -> None:
    assert found("Comments are due 30 days after publication in the Federal Register.") == set()
    assert found("La ley entrará en vigor a los seis meses de su publicación en el Boletín Oficial del Estado.") == set()


def test_distractor_dates_are_excluded() -> None:
    text = (
        "London, 1 February 2027 – The Act received Royal Assent on 20 January 2027. "
        "We will discuss the Act in a webinar on 10 March 2027. "
        "Between 1 April 2025 and 31 March 2026, 1,200 complaints were received. "
        "Firms will submit their first returns for the reporting period ending 30 June 2027. "
        "The department will hold information sessions on 5 and 12 March 2027. "
        "The consultation closed on 15 December 2026."
    )
    assert found(text) == set()


def test_yearless_dates_take_the_year_that_follows_publication() -> None:
    assert ("2027-06-01", "effective") in found("Starting Monday, June 1, the new payout rate applies.", date(2027, 5, 25))
    assert ("2028-01-15", "comments_due") in found("Comments are invited until January 15.", date(2027, 11, 20))


def test_without_a_publication_date_past_tense_cues_still_exclude() -> None:
    assert found("The rule took effect on 1 March 2027 and firms must comply by 1 September 2027.", None) == {
        ("2027-09-01", "compliance")}


def test_phrase_is_the_clause_that_states_the_date_and_json_shape() -> None:
    [key] = extract_dates("", "Background aside, existing providers have until 30 November 2027 to update their screens.", PUB, "en")
    assert "30 November 2027" in key.phrase and len(key.phrase) < 80
    assert key.as_json() == {"date": "2027-11-30", "type": "compliance", "phrase": key.phrase}
    with pytest.raises(AttributeError):
        key.type = "effective"  # type: ignore[misc]
    assert isinstance(key, KeyDate)


def test_mentions_parse_eras_full_width_digits_and_reject_impossible_days() -> None:
    days = [m.day for m in find_mentions("令和９年２月３日、同年４月１日、31 February 2027", None)]
    assert days == [date(2027, 2, 3), date(2027, 4, 1)]


def test_a_typical_article_takes_milliseconds() -> None:
    text = ("The Commission adopted the rules today. They take effect on 1 October 2027, and providers must "
            "register by 31 December 2027. ") * 30
    start = time.perf_counter()
    for _ in range(20):
        extract_dates("Title", text, PUB, "en")
    assert (time.perf_counter() - start) / 20 < 0.05


# --- classes of failure found on the held-out set (these wordings are in neither labelled set) ---


@pytest.mark.parametrize("text, lang, expected", [
    # numeric and month-end date forms
    ("Operators must register by 30/06/2027.", "en", ("2027-06-30", "compliance")),
    ("Operators must register by 06/30/2027.", "en", ("2027-06-30", "compliance")),
    ("Os operadores devem se cadastrar até 30/06/2027.", "pt", ("2027-06-30", "compliance")),
    ("Gli operatori devono adeguarsi entro il 30.06.2027.", "it", ("2027-06-30", "compliance")),
    ("사업자는 2027. 6. 30.까지 신고하여야 한다.", "ko", ("2027-06-30", "compliance")),
    ("本规定自2027.7.1起施行。", "zh", ("2027-07-01", "effective")),
    ("Firms should implement the changes by the end of June 2027.", "en", ("2027-06-30", "compliance")),
    ("Die Anbieter müssen bis Ende Juni 2027 berichten.", "de", ("2027-06-30", "compliance")),
    ("Les plateformes doivent se conformer d'ici fin juin 2027.", "fr", ("2027-06-30", "compliance")),
    ("事業者は2027年6月末までに対応する必要があります。", "ja", ("2027-06-30", "compliance")),
    ("平台应当于2027年6月底前完成整改。", "zh", ("2027-06-30", "compliance")),
    ("사업자는 2027년 6월 말까지 보고해야 한다.", "ko", ("2027-06-30", "compliance")),
    # a time of day between the deadline word and the date
    ("Responses must reach us by 11:59 p.m. ET on March 15, 2027.", "en", ("2027-03-15", "comments_due")),
    ("Comments are invited until midnight on 20 April 2027.", "en", ("2027-04-20", "comments_due")),
    ("Stellungnahmen können bis 12 Uhr am 15.03.2027 abgegeben werden.", "de", ("2027-03-15", "comments_due")),
    # relative to the document itself
    ("Licensees must submit a plan within 14 days of this notice.", "en", ("2027-02-15", "compliance")),
    ("各平台应当自本公告发布之日起15日内提交报告。", "zh", ("2027-02-16", "compliance")),
    # comment and duty vocabulary
    ("Reacties kunnen worden ingediend tot en met 15 maart 2027.", "nl", ("2027-03-15", "comments_due")),
    ("Aanbieders moeten vóór 1 juli 2027 voldoen.", "nl", ("2027-07-01", "compliance")),
    ("Las aportaciones podrán remitirse hasta el 15 de marzo de 2027.", "es", ("2027-03-15", "comments_due")),
    # a statistics period does not swallow the deadline after it
    ("For the quarter ending 30 June 2027, returns must be filed by 31 July 2027.", "en", ("2027-07-31", "compliance")),
])
def test_held_out_failure_classes(text: str, lang: str, expected: tuple[str, str]) -> None:
    assert found(text, lang=lang) == {expected}


def test_publication_in_a_named_journal_needs_a_date_for_that_journal() -> None:
    text = ("The Ministry published the draft law today. The law will enter into force twenty days after its "
            "publication in the Official Journal.")
    assert found(text) == set()
    assert found("Il decreto entra in vigore decorsi quindici giorni dalla pubblicazione nella Gazzetta Ufficiale.", lang="it") == set()


def _heldout() -> list[dict]:
    import json
    from pathlib import Path

    path = Path(__file__).parent.parent / "scanner" / "data" / "eval" / "lifecycle-heldout.jsonl"
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_held_out_set_floors() -> None:
    """lifecycle-heldout.jsonl was written without reading the dev texts; it guards against cue lists
    that only fit the dev set. Before the fixes it scored P 0.923 / R 0.766 / non-English R 0.800 /
    stage accuracy 0.743."""
    from scanner.evaluate_lifecycle import evaluate_dates, evaluate_stages

    items = _heldout()
    assert len(items) >= 30 and sum(i["lang"] != "en" for i in items) >= 12
    for item in items:
        for d in item["dates"]:
            assert d["phrase"] in item["text"], (item["id"], d["phrase"])
    dates = evaluate_dates(items)
    assert dates["overall"]["precision"] >= 0.9, dates["errors"]
    assert dates["overall"]["recall"] >= 0.85, dates["errors"]
    assert dates["non_english"]["recall"] >= 0.8, dates["errors"]
    stages = evaluate_stages(items, {})
    assert stages["accuracy"] >= 0.75, stages["errors"]
