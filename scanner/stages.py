"""The stage of a regulatory matter a development reports: consultation, proposal, final, guidance,
in-force, enforcement or commentary.

`classify_stage(title, text, kind, lang)` reads cue words of regulatory writing in each language,
first in the title, then in the lead (the first ~400 characters of the text), and takes the first
stage in a fixed priority whose cues appear there:

    enforcement > in-force > enacted (final) > proposal > consultation > guidance adopted > final > guidance

and, when nothing else fits, a rule announced to "come into effect on" a date is final.

The order encodes how releases are worded: an enforcement release may mention the guidance it
enforces; a consultation *on a draft rule* ("minuta de portaria", "征求意见稿", "改正案", NPRM) is a
proposal; a consultation that "concludes" with new rules is final; "guidelines" in a review's title
do not make it guidance, but guidelines *adopted / approved / published* are guidance; a signed bill
("signs … into law", royal assent, promulgated) is final; "draft guidance" under consultation stays a
consultation; a dated instrument title ("Décret n° … du …", "Real Decreto 1/2027, de …", "Portaria nº
…, de …") or a regulation "published in the Official Journal" is final. Law-firm and legal-news items are commentary. A competitor announcing
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
        r"(?:compliance|enforcement|infringement|penalty|warning) notices?", r"warning letters?", r"investigation (?:found|finds|concluded)",
        r"\bin breach of\b", r"\bbreache[sd]\b", r"consent (?:order|decree)", r"beanstandet", r"beanstandung", r"untersag", r"boete",
        r"last onder dwangsom", r"\bsanctie", r"avertissement", r"\bmultad[ao]\b",
        r"措置命令", r"課徴金", r"行政処分", r"处罚", r"罚款", r"约谈", r"责令", r"과징금", r"시정명령", r"제재", r"고발",
    )),
    ("in-force", _cues(
        r"\breminder\b", r"(?:start|starts|begin|begins|apply|applies|take effect|takes effect)\s+(?:next week|today|tomorrow|this week|now)",
        r"now (?:in force|in effect|live|applies|apply)", r"(?:comes?|entered|enters) into force today", r"from today",
        r"ab heute", r"ab sofort", r"entre en vigueur aujourd'hui", r"entra en vigor hoy", r"entra em vigor hoje",
        r"entra in vigore oggi", r"vandaag in werking", r"vanaf vandaag", r"本日(?:から|より)施行", r"今日起施行", r"오늘부터 시행",
    )),
    ("final", _cues(  # enacted: a signed bill is a law, not a proposal
        r"\bsign(?:s|ed)\s+(?:[\w-]+\s+){0,3}(?:bill|act|law|legislation)\b", r"signed into law", r"\bsign(?:s|ed)?\b[^.\n]{0,80}\binto law\b",
        r"receives? royal assent", r"\bpromulgat(?:es|ed)\b", r"ausgefertigt", r"unterzeichnet", r"promulgu[ée]", r"sanciona (?:a |la )?(?:lei|ley)\b",
        r"promulgad[ao]", r"promulgat[ao]", r"bekrachtig",
    )),
    ("proposal", _cues(
        r"\bpropos(?:es|ed|al)\b", r"\bNPRM\b", r"notice of proposed rulemaking", r"\bdraft\b", r"\bbill\b",
        r"entwurf", r"referentenentwurf", r"projet de (?:loi|décret|règlement|texte)", r"proposition de",
        r"anteproyecto", r"proyecto de (?:ley|real decreto|orden|reglamento)", r"minuta", r"projeto de lei", r"proposta",
        r"disegno di legge", r"schema di (?:decreto|regolamento)", r"征求意见稿", r"草案", r"改正案", r"法案", r"省令案",
        r"개정안", r"입법예고", r"행정예고", r"제정안", r"wetsvoorstel", r"ontwerp(?:besluit|regeling|wet|beleidsregel)", r"voorgestelde",
    )),
    ("consultation", _cues(
        r"call(?:s|ing)? for evidence", r"have your say", r"\bconsult(?:ation|s|ing)\b", r"seek(?:s|ing)? (?:views|comments|input)",
        r"(?:launch|launches|opens?|starts?) (?:a |its )?review", r"\bcalls? for (?:views|input|comments)",
        r"konsultation", r"öffentliche anhörung", r"consultation publique", r"consulta pública", r"consulta publica",
        r"consultazione pubblica", r"consultatie", r"vraagt (?:om )?reacties", r"información pública", r"audiencia pública", r"意見募集", r"パブリックコメント", r"公开征求意见", r"征求意见", r"의견수렴", r"의견 수렴",
    )),
    ("guidance", _cues(  # guidance adopted / approved / published: the guidance is the development
        r"(?:adopt|approv|publish|issu|releas|updat|approva|adott|pubblic|publi|verabschied|veröffentlich)\w*\s+(?:[\w'’-]+\s+){0,4}?"
        r"(?:guidance|guidelines|linee guida|leitlinien|leitfaden|lignes directrices|directrices|orientações|leidraad|richtsnoeren)\b",
        r"(?:guidance|guidelines|linee guida|leitlinien|leitfaden|lignes directrices|directrices|orientações|leidraad|richtsnoeren)\s+"
        r"(?:[\w'’-]+\s+){0,3}?(?:adopted|approved|published|issued|approvate|adottate|pubblicate|verabschiedet|veröffentlicht|publiées|adoptées|aprobadas|publicadas|aprovadas)\b",
    )),
    ("final", _cues(
        r"\bfinali[sz]es?\b", r"final rule", r"\bfinal (?:[\w-]+ ){0,4}(?:rules|regulations?|requirements|standards)\b", r"\badopts?\b", r"\bnotifies\b", r"\bapproves?\b", r"\bpasse[sd]\b", r"\benact",
        r"new (?:[\w-]+ ){0,4}(?:rules|regulations?|law|requirements|framework|code)\b", r"\bissues (?:new |final )?(?:rules|regulations|decree)",
        r"review concludes", r"government response", r"response to the (?:call|consultation)", r"\bcodes? of practice (?:published|laid)",
        r"verabschiedet", r"beschlossen", r"erlässt", r"adopte", r"publie (?:le|la|les) (?:décret|arrêté|règlement)", r"aprueba",
        r"publica(?:do|da)? (?:a |o )?(?:portaria|resolução|decreto|lei)", r"sanciona a lei", r"approva", r"adotta",
        r"发布《", r"公布《", r"印发", r"施行", r"의결", r"공포", r"제정", r"公布", r"閣議決定", r"公表しました",
        # a made instrument: published in the journal, registered, or named with its number and date
        r"published in the (?:official journal|federal register|[\w ]{0,20}gazette)", r"\bregister(?:s|ed)\s+(?:[\w-]+\s+){0,3}codes?\b",
        r"\b(?:regulation|directive|decree|order|act|rules)\b[^.\n]{0,80}\bpublished\b",
        r"\b(?:décret|arrêté|ordonnance|loi)\s+n\s?[°º]\s*[\d-]+\s+du\s+\d", r"\b(?:real decreto|decreto|ley|orden [A-Z]+/)\s*\d+/\d{4},?\s+de\s+\d",
        r"\b(?:portaria|decreto|lei|resolução|instrução normativa)\b[^,\n]{0,30}n\.?\s?[º°.]\s*[\d.]+(?:/\d+)?,?\s+de\s+\d",
        r"\b(?:verordnung|gesetz)\b[^,\n]{0,60}\bvom\s+\d", r"\bdecreto(?: legislativo| legge| ministeriale)?\s+\d{1,2}\s+\w+\s+\d{4}",
        r"\b(?:besluit|regeling|wet) van \d", r"vastgesteld", r"aangenomen", r"\bpublica (?:el|la) (?:real decreto|orden|ley)",
    )),
    ("guidance", _cues(
        r"guidelines?", r"\bguidance\b", r"\bFAQs?\b", r"\bQ&A\b", r"handbook", r"\badvisory\b", r"help (?:centre|center|page)",
        r"how to\b", r"leitlinien", r"leitfaden", r"lignes directrices", r"directrices", r"orientaç", r"guia", r"guía", r"linee guida", r"leidraad", r"richtsnoeren", r"handreiking", r"vragen en antwoorden",
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
    if kind == "competitor" or _WILL_APPLY.search(title + "\n" + lead):
        return "final"
    return None


_WILL_APPLY = _cues(  # "... will come into effect on 30 December 2026": nothing else said, a made rule
    r"will (?:come into (?:force|effect)|take effect|apply|enter into force)", r"\b(?:comes?|come) into (?:force|effect) on\b",
    r"\btakes effect (?:on )?[A-Z0-9]", r"\btritt\b[^.]{0,40}\bin kraft", r"entrer[ao] en vigueur", r"entre en vigueur (?:le|à)",
    r"entrará en vigor el", r"entrará em vigor", r"entrerà in vigore", r"treedt\b[^.]{0,40}\bin werking",
)


def _first_stage(text: str) -> str | None:
    # "consults on draft guidance": a consultation, not a draft rule (a draft guideline on its own stays a proposal)
    masked = _GUIDANCE_DRAFT.sub(" ", text) if dict(CUES)["consultation"].search(text) else text
    for stage, pattern in CUES:
        if pattern.search(masked if stage == "proposal" else text):
            return stage
    return None


_DRAFT = dict(CUES)["proposal"]


_GUIDANCE_DRAFT = re.compile(
    r"(?i)\b(?:draft|proposed)\s+(?:[\w-]+\s+){0,2}?(?:guidance|guidelines?|advice|FAQs?)\b|"
    r"\b(?:projet de|proposta di|proyecto de|projeto de|entwurf (?:der|des|eines|einer))\s+(?:[\w-]+\s+){0,2}?"
    r"(?:lignes directrices|linee guida|directrices|orientações|leitlinien|leitfadens?)\b")


def _draft_consulted(text: str) -> bool:
    """A consultation on a draft instrument is the proposal stage of that instrument; a consultation on
    draft guidance is still a consultation (guidance is not a rule being made)."""
    return bool(_DRAFT.search(_GUIDANCE_DRAFT.sub(" ", text)))
