"""The stage of a regulatory matter a development reports: consultation, proposal, final, guidance,
in-force, enforcement or commentary.

`classify_stage(title, text, kind, lang)` reads cue words of regulatory writing in each language,
first in the title, then in the lead (the first ~400 characters of the text), and takes the first
stage in a fixed priority whose cues appear there:

    enforcement > in-force > proposal > consultation > final > guidance

The order encodes how releases are worded: an enforcement release may mention the guidance it
enforces; a consultation *on a draft rule* ("minuta de portaria", "征求意见稿", "改正案", NPRM) is a
proposal; a consultation that "concludes" with new rules is final; "guidelines" in a review's title
do not make it guidance. Law-firm and legal-news items are commentary. A competitor announcing
changes to its own programme is `final` unless it is a reminder that they start now (`in-force`) or
an FAQ / help page (`guidance`). None when nothing fits.
"""

from __future__ import annotations

import re

STAGES = ("consultation", "proposal", "final", "guidance", "in-force", "enforcement", "commentary")
LEAD_CHARS = 400


def _cues(*parts: str) -> re.Pattern[str]:
    return re.compile("(?i)(?:" + "|".join(parts) + ")")


CUES: list[tuple[str, re.Pattern[str]]] = [
    ("enforcement", _cues(
        r"\bfines?\b", r"\bfined\b", r"\bsues?\b", r"\bsued\b", r"lawsuit", r"\bcomplaint against", r"penalt(?:y|ies)",
        r"\bsanction", r"formal proceedings", r"opens? proceedings", r"infringement", r"\bcharges?\b.{0,30}\bwith\b",
        r"cease[- ]and[- ]desist", r"orders? (?:blocking|the blocking|to stop|to pay)", r"requests? for information",
        r"\bsettle(?:s|ment)\b", r"enforcement action", r"investigation into", r"\bdeclares\b.{0,60}\b(?:illegal|unlawful|money games?)",
        r"bußgeld", r"geldbuße", r"verfahren gegen", r"\bamende\b", r"sanctionne", r"mise en demeure", r"\bmulta", r"sanción",
        r"sanciona", r"expediente sancionador", r"sanç", r"autua", r"sanzion", r"procedimento sanzionatorio",
        r"措置命令", r"課徴金", r"行政処分", r"处罚", r"罚款", r"约谈", r"责令", r"과징금", r"시정명령", r"제재", r"고발",
    )),
    ("in-force", _cues(
        r"\breminder\b", r"(?:start|starts|begin|begins|apply|applies|take effect|takes effect)\s+(?:next week|today|tomorrow|this week|now)",
        r"now (?:in force|in effect|live|applies|apply)", r"(?:comes?|entered|enters) into force today", r"from today",
        r"ab heute", r"ab sofort", r"entre en vigueur aujourd'hui", r"entra en vigor hoy", r"entra em vigor hoje",
        r"entra in vigore oggi", r"本日(?:から|より)施行", r"今日起施行", r"오늘부터 시행",
    )),
    ("proposal", _cues(
        r"\bpropos(?:es|ed|al)\b", r"\bNPRM\b", r"notice of proposed rulemaking", r"\bdraft\b", r"\bbill\b",
        r"entwurf", r"referentenentwurf", r"projet de (?:loi|décret|règlement|texte)", r"proposition de",
        r"anteproyecto", r"proyecto de (?:ley|real decreto|orden|reglamento)", r"minuta", r"projeto de lei", r"proposta",
        r"disegno di legge", r"schema di (?:decreto|regolamento)", r"征求意见稿", r"草案", r"改正案", r"法案", r"省令案",
        r"개정안", r"입법예고", r"행정예고", r"제정안",
    )),
    ("consultation", _cues(
        r"call(?:s|ing)? for evidence", r"have your say", r"\bconsult(?:ation|s|ing)\b", r"seek(?:s|ing)? (?:views|comments|input)",
        r"(?:launch|launches|opens?|starts?) (?:a |its )?review", r"\bcalls? for (?:views|input|comments)",
        r"konsultation", r"öffentliche anhörung", r"consultation publique", r"consulta pública", r"consulta publica",
        r"consultazione pubblica", r"意見募集", r"パブリックコメント", r"公开征求意见", r"征求意见", r"의견수렴", r"의견 수렴",
    )),
    ("final", _cues(
        r"\bfinali[sz]es?\b", r"final rule", r"\bfinal (?:[\w-]+ ){0,4}(?:rules|regulations?|requirements|standards)\b", r"\badopts?\b", r"\bnotifies\b", r"\bapproves?\b", r"\bpasse[sd]\b", r"\benact",
        r"new (?:[\w-]+ ){0,4}(?:rules|regulations?|law|requirements|framework|code)\b", r"\bissues (?:new |final )?(?:rules|regulations|decree)",
        r"review concludes", r"government response", r"response to the (?:call|consultation)", r"\bcodes? of practice (?:published|laid)",
        r"verabschiedet", r"beschlossen", r"erlässt", r"adopte", r"publie (?:le|la|les) (?:décret|arrêté|règlement)", r"aprueba",
        r"publica(?:do|da)? (?:a |o )?(?:portaria|resolução|decreto|lei)", r"sanciona a lei", r"approva", r"adotta",
        r"发布《", r"公布《", r"印发", r"施行", r"의결", r"공포", r"제정", r"公布", r"閣議決定", r"公表しました",
    )),
    ("guidance", _cues(
        r"guidelines?", r"\bguidance\b", r"\bFAQs?\b", r"\bQ&A\b", r"handbook", r"\badvisory\b", r"help (?:centre|center|page)",
        r"how to\b", r"leitlinien", r"leitfaden", r"lignes directrices", r"directrices", r"orientaç", r"guia", r"linee guida",
        r"指南", r"指引", r"ガイドライン", r"運用基準", r"가이드라인", r"안내서", r"해설서",
    )),
]


def classify_stage(title: str, text: str, kind: str | None, lang: str | None = None) -> str | None:
    """One of STAGES, or None when no cue fits."""
    if kind == "legal-news":
        return "commentary"
    title = title or ""
    lead = (text or "")[:LEAD_CHARS]
    for where in (title, lead):
        stage = _first_stage(where)
        if stage == "consultation" and _draft_consulted(title + "\n" + lead):
            return "proposal"
        if stage:
            return stage
    if kind == "competitor":
        return "final"
    return None


def _first_stage(text: str) -> str | None:
    for stage, pattern in CUES:
        if pattern.search(text):
            return stage
    return None


_DRAFT = dict(CUES)["proposal"]


def _draft_consulted(text: str) -> bool:
    """A consultation on a draft instrument is the proposal stage of that instrument."""
    return bool(_DRAFT.search(text))
