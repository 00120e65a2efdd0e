"""Key dates of a development: when comments are due, when a rule takes effect, when firms must act.

`extract_dates(title, text, published, lang)` finds every day-precise date a regulatory text states
(English, German, French, Spanish, Portuguese, Italian, Dutch, Chinese, Japanese including era years,
Korean; relative dates such as "the twentieth day following that of its publication" or "within
ninety days of the commencement of these rules" are resolved from a date the text gives, or from
`published` when the text says "today"), then keeps those a policy team must act on:

- `comments_due`: a consultation, call for evidence or comment period closes;
- `effective`: a rule, law, code, guideline or product change applies / enters into force / starts;
- `compliance`: any other deadline by which someone must act (register, report, implement, reply).

A date is dropped when it is not after `published` (the publication date itself, past events), when
its clause is about an event (webinar, workshop, hearing, information session) or a statistics period
("the reporting period ending …"), or when no cue in its clause says what the date is.

Pure regular expressions and small per-language cue lists: no model, no dateparser (which is ~10x
slower per article and reads "18+" or "15" as dates). Typical article: about 1-3 ms.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

TYPES = ("comments_due", "effective", "compliance")


@dataclass(frozen=True)
class KeyDate:
    date: date
    type: str
    phrase: str

    def as_json(self) -> dict[str, Any]:
        return {"date": self.date.isoformat(), "type": self.type, "phrase": self.phrase}


@dataclass(frozen=True)
class Mention:
    """A date the text states: where, which day, and whether its year was written or inferred."""

    start: int
    end: int
    day: date
    explicit_year: bool = True


# --- month names ------------------------------------------------------------------------------

_MONTHS: dict[str, int] = {}


def _add_months(names: str) -> None:
    for number, group in enumerate(names.split(), start=1):
        for name in group.split("/"):
            _MONTHS[name.lower()] = number


_add_months("january/jan february/feb march/mar april/apr may june/jun july/jul august/aug "
            "september/sep/sept october/oct november/nov december/dec")                     # en
_add_months("januar/jänner februar/feber märz/maerz april mai juni juli august september oktober november dezember")  # de
_add_months("janvier février/fevrier mars avril mai juin juillet août/aout septembre octobre novembre décembre/decembre")  # fr
_add_months("enero febrero marzo abril mayo junio julio agosto septiembre/setiembre octubre noviembre diciembre")  # es
_add_months("janeiro fevereiro março/marco abril maio junho julho agosto setembro outubro novembro dezembro")  # pt
_add_months("gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre")  # it
_add_months("januari februari maart april mei juni juli augustus september oktober november december")  # nl
_add_months("januari februari maret april mei juni juli agustus september oktober november desember")  # id

_MONTH = "(?:" + "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True)) + r")\.?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])"
_ORD = r"(?:st|nd|rd|th|er|re|º|°|ª|o)?"
_YEAR = r"(?:19|20)\d\d"
_WEEKDAY = (r"(?:(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thurs|fri|sat|sun)\.?,?\s+)?")

_DATE_PATTERNS: list[tuple[re.Pattern[str], tuple[str, str, str]]] = [
    # 2027-03-31
    (re.compile(rf"(?<![\d/.-])(?P<y>{_YEAR})-(?P<m>0[1-9]|1[0-2])-(?P<d>[0-2]\d|3[01])(?![\d-])"), ("y", "m", "d")),
    # 2027年4月1日, 令和8年12月11日, 同年10月1日, 4月1日
    (re.compile(r"(?:(?P<era>令和|平成)(?P<ey>元|\d{1,2})年|(?P<y>(?:19|20)\d\d)年|(?P<same>同年))?\s*"
                r"(?P<m>1[0-2]|0?[1-9])月\s*(?P<d>[12]\d|3[01]|0?[1-9])日"), ("y", "m", "d")),
    # 2027년 3월 31일, 3월 31일
    (re.compile(r"(?:(?P<y>(?:19|20)\d\d)\s*년\s*)?(?P<m>1[0-2]|0?[1-9])\s*월\s*(?P<d>[12]\d|3[01]|0?[1-9])\s*일"), ("y", "m", "d")),
    # October 1, 2027 / Monday, June 1 / Sept. 1st
    (re.compile(rf"(?i)\b{_WEEKDAY}(?P<mn>{_MONTH})\s+(?P<d>{_DAY}){_ORD}\b(?:,?\s+(?P<y>{_YEAR})\b)?"), ("y", "mn", "d")),
    # 1 October 2027 / 1. Juli 2027 / le 1er mars 2027 / 31 de março de 2027 / 1º de agosto / 1 ottobre
    (re.compile(rf"(?i)(?<![\d.,])(?P<d>{_DAY}){_ORD}\.?\s*(?:de\s+|of\s+)?(?P<mn>{_MONTH})(?![\w])"
                rf"(?:,?\s+(?:de\s+|del\s+)?(?P<y>{_YEAR})\b)?"), ("y", "mn", "d")),
    # numeric forms. 2027/3/31, 2027.03.31, 2027. 3. 31. (CJK, Korean)
    (re.compile(rf"(?<![\d/.])(?P<y>{_YEAR})\s?(?P<sep>[/.])\s?(?P<m>1[0-2]|0?[1-9])\s?(?P=sep)\s?(?P<d>[12]\d|3[01]|0?[1-9])(?![\d/])"),
     ("y", "m", "d")),
    # 31.12.2027 (always day first), 31/12/2027 and 12/31/2027 (day first unless the language is English
    # and the first number can be a month: US usage)
    (re.compile(rf"(?<![\d/.])(?P<d>{_DAY})\.(?P<m>1[0-2]|0?[1-9])\.(?P<y>{_YEAR})(?!\.?\d)"), ("y", "m", "d")),
    (re.compile(rf"(?<![\d/.])(?P<a>[12]\d|3[01]|0?[1-9])/(?P<b>[12]\d|3[01]|0?[1-9])/(?P<y>{_YEAR})(?![\d/])"), ("y", "a", "b")),
    # a month's end: "by the end of March 2027", "Ende März 2027", "fin mars 2027", "finales de marzo de 2027",
    # "fine marzo 2027", "eind maart 2027", 2027年3月末 / 3月底, 2027년 3월 말 -> the month's last day
    (re.compile(rf"(?i)\b(?:the\s+)?(?P<end>end\s+of|ende|fin(?:\s+de|\s+d')?|fine(?:\s+di)?|(?:a\s+)?finales\s+de|fines\s+de|"
                rf"final\s+de|fim\s+de|eind(?:e)?)\s+(?P<mn>{_MONTH})(?![\w]),?\s+(?:de\s+|del\s+)?(?P<y>{_YEAR})\b"), ("y", "mn", "end")),
    (re.compile(r"(?P<y>(?:19|20)\d\d)\s*(?:年|년)\s*(?P<m>1[0-2]|0?[1-9])\s*(?:月|월)\s*(?P<end>末|底|말)"), ("y", "m", "end")),
]

_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


def find_mentions(text: str, published: date | None, lang: str | None = None) -> list[Mention]:
    """Every day-precise date in `text`, in order. A missing year is the one that puts the date
    nearest after `published` (a day more than ~7 months before it is taken as next year's);
    同年 ("the same year") takes the year of the date before it; "the end of March 2027" is its last
    day; an ambiguous a/b/yyyy is month first only in English."""
    work = text.translate(_FULLWIDTH)
    raw: list[tuple[int, int, int | None, int, int]] = []
    taken: list[tuple[int, int]] = []
    for pattern, _ in _DATE_PATTERNS:
        for match in pattern.finditer(work):
            if any(s < match.end() and match.start() < e for s, e in taken):
                continue
            groups = match.groupdict()
            if groups.get("a"):
                a, b = int(groups["a"]), int(groups["b"])
                month_first = b > 12 or (a <= 12 and (lang or "en").startswith("en"))
                groups["m"], groups["d"] = (str(a), str(b)) if month_first else (str(b), str(a))
                if int(groups["m"]) > 12:
                    continue
            month = int(groups["m"]) if groups.get("m") else _MONTHS.get((groups.get("mn") or "").lower().rstrip("."))
            if not month:
                continue
            if groups.get("end"):
                groups["d"] = str(calendar.monthrange(int(groups["y"]), month)[1])
            year: int | None = None
            if groups.get("era"):
                year = (2018 if groups["era"] == "令和" else 1988) + (1 if groups["ey"] == "元" else int(groups["ey"]))
            elif groups.get("y"):
                year = int(groups["y"])
            elif groups.get("same"):
                year = -1
            taken.append((match.start(), match.end()))
            raw.append((match.start(), match.end(), year, month, int(groups["d"])))
    raw.sort()
    mentions: list[Mention] = []
    last_year: int | None = None
    anchor = published or date.today()
    for start, end, year, month, day in raw:
        explicit = year is not None
        if year == -1:
            year = last_year
            if year is None:
                continue
        try:
            if year is None:
                guess = date(anchor.year, month, day)
                if guess < anchor - timedelta(days=214):
                    guess = date(anchor.year + 1, month, day)
            else:
                guess = date(year, month, day)
        except ValueError:  # 31 February and the like: not a date
            continue
        if explicit:
            last_year = guess.year
        mentions.append(Mention(start, end, guess, explicit))
    return mentions


# --- relative dates ---------------------------------------------------------------------------

_NUMBER_WORDS = {
    # en
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30, "forty-five": 45, "sixty": 60, "ninety": 90,
    "first": 1, "tenth": 10, "fifteenth": 15, "twentieth": 20, "thirtieth": 30, "sixtieth": 60,
    # de
    "einem": 1, "einen": 1, "zwei": 2, "drei": 3, "sechs": 6, "zwölf": 12, "zehn": 10, "vierzehn": 14,
    "zwanzig": 20, "dreißig": 30, "sechzig": 60, "neunzig": 90, "zwanzigsten": 20,
    # fr
    "un": 1, "deux": 2, "trois": 3, "six_fr": 6, "douze": 12, "quinze": 15, "vingt": 20, "trente": 30,
    "soixante": 60, "quatre-vingt-dix": 90, "vingtième": 20,
    # es / pt / it
    "uno": 1, "dos": 2, "tres": 3, "seis": 6, "doce": 12, "quince": 15, "veinte": 20, "treinta": 30,
    "sesenta": 60, "noventa": 90, "vigésimo": 20, "um": 1, "dois": 2, "três": 3, "doze": 12, "trinta": 30,
    "sessenta": 60, "vinte": 20, "quinze_pt": 15, "uno_it": 1, "due": 2, "tre": 3, "sei": 6, "dodici": 12,
    "quindici": 15, "venti": 20, "trenta": 30, "sessanta": 60, "novanta": 90, "ventesimo": 20,
}
_NUMBER = r"(?:\d{1,3}|" + "|".join(sorted((re.escape(w) for w in _NUMBER_WORDS if "_" not in w), key=len, reverse=True)) + ")"
_UNIT = (r"(?P<unit>calendar days?|business days?|working days?|days?|weeks?|months?|"
         r"(?:Kalender|Werk|Arbeits)?tage?n?|Wochen?|Monate?n?|jours?(?: ouvrés| ouvrables| calendaires)?|semaines?|mois|"
         r"días?(?: hábiles| naturales)?|dias?(?: úteis| corridos)?|semanas?|meses|mês|giorni|settimane|mesi|mese|"
         r"日|天|か月|ヶ月|カ月|개월|일)")
_ANCHOR_WORDS = {
    "publication": r"publication|published|publish|veröffentlichung|verkündung|publicación|publicação|pubblicazione|公布|发布|公表|공포|게재",
    "commencement": r"commencement|entry into force|effective date|coming into force|inkrafttreten|entrée en vigueur|"
                    r"entrada en vigor|entrada em vigor|entrata in vigore|施行|시행",
    "today": r"today|heute|aujourd'hui|hoy|hoje|oggi|odiern|本日|今日|오늘",
    # the document itself ("within 30 days of this notice"): its date is the publication date
    "self": r"this (?:notice|letter|announcement|circular|communication)|(?:dieser|diesem) (?:Mitteilung|Bekanntmachung|Schreiben)|"
             r"(?:du )?présent (?:avis|communiqué)|(?:de )?(?:este|el presente) (?:aviso|anuncio|comunicado)|"
             r"(?:deste|do presente) (?:aviso|comunicado|edital|ofício)|(?:del )?presente (?:avviso|comunicato)|deze (?:mededeling|brief|bekendmaking)",
}
_REL_EU = re.compile(
    rf"(?i)\b(?:the\s+|am\s+|le\s+|el\s+|il\s+|o\s+)?(?P<n>{_NUMBER})\s*{_UNIT}"
    r"(?P<tail>(?:\s+\w[\w'’-]*){0,2}?\s+(?:after|following|of|from|since|nach|ab|après|à compter de|suivant|"
    r"después de|desde|a partir de|tras|de|após|a contar d[ae]|contados d[ae]|da|dalla|dal|dopo|successiv[oa] all?a?)"
    r"\s+(?:\w[\w'’-]*\s+){0,5}?(?:" + "|".join(_ANCHOR_WORDS.values()) + r"))"
)
_REL_CJK = re.compile(
    r"(?P<self>本(?:通知|公告|决定|意见|通達)|この通知|본\s*공고|이\s*공고)?\s*"
    r"(?P<anchor>公布|发布|印发|公表|공포|施行|시행|公告|공고)(?:の日|之日|일|한\s*날|후|後)?\s*(?:から起算して|起|부터|로부터|から)?\s*"
    r"(?P<n>\d{1,3})\s*(?P<unit>日|天|か月|ヶ月|カ月|개월|일)"
)


def _number(word: str) -> int | None:
    word = word.lower()
    if word.isdigit():
        return int(word)
    return _NUMBER_WORDS.get(word) or _NUMBER_WORDS.get(word + "_fr")


def _shift(anchor: date, n: int, unit: str) -> date:
    unit = unit.lower()
    if unit.startswith(("week", "woche", "semaine", "semana", "settiman")):
        return anchor + timedelta(weeks=n)
    if unit.startswith(("month", "monat", "mois", "mes", "mês", "mese", "mesi")) or unit in ("か月", "ヶ月", "カ月", "개월"):
        month = anchor.month - 1 + n
        year = anchor.year + month // 12
        month = month % 12 + 1
        return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))
    if "business" in unit or "working" in unit or "werk" in unit or "arbeit" in unit or "ouvr" in unit or "hábil" in unit or "úte" in unit:
        day, left = anchor, n
        while left:
            day += timedelta(days=1)
            if day.weekday() < 5:
                left -= 1
        return day
    return anchor + timedelta(days=n)


def _anchor_kind(phrase: str) -> str | None:
    for kind, words in (("today", _ANCHOR_WORDS["today"]), ("today", _ANCHOR_WORDS["self"]), ("commencement", _ANCHOR_WORDS["commencement"]),
                        ("publication", _ANCHOR_WORDS["publication"])):
        if re.search(words, phrase, re.I):
            return kind
    return None


# --- cues -------------------------------------------------------------------------------------

def _cues(*parts: str) -> re.Pattern[str]:
    return re.compile("(?i)(?:" + "|".join(parts) + ")")


# words right before (Latin scripts) or right after (CJK) a date that make it a deadline or a start
_DEADLINE_BEFORE = re.compile(
    r"(?i)(?:\bby|no later than|not later than|until|till|through|before|prior to|on or before|deadline(?: of| is)?|"
    r"due(?: by| on)?|closes?(?: at [^,;]{0,25})?(?: on)?|bis(?: zum| spätestens)?|spätestens(?: am| bis)?|"
    r"d'ici(?: le| au| à la)?|avant(?: le| la)?|au plus tard le|jusqu'au|hasta(?: el)?|antes del?|a más tardar el|até(?: o dia)?|"
    r"no prazo de|entro(?: il| la)?|fino al|non oltre il|uiterlijk(?: op)?|tot en met|(?:vóór|voor) of op|vóór|paling lambat(?: pada)?(?: tanggal)?|"
    r"hingga(?: tanggal)?|sampai(?: dengan)?(?: tanggal)?|截止(?:时间|日期)?为?|截至|于)\W{0,3}\s*$"
)
# a time of day between the deadline word and the date: "by 5pm on", "until 23:59 on", "bis 12 Uhr am",
# "avant 12h le", "até às 18h do dia", "entro le ore 12:00 del", "uiterlijk 17.00 uur op"
_TIME_OF_DAY = re.compile(
    r"(?i)(?:,?\s*(?:at|um|à|a las|às|alle|le ore|ore|om)?\s*(?:\d{1,2}(?:[:.h]\d\d)?\s*(?:a\.?m\.?|p\.?m\.?|uhr|h\b|horas|uur)|"
    r"\d{1,2}[:.]\d\d|midnight|noon|close of business|minuit|midi|medianoche|mezzanotte)"
    r"(?:\s*\(?(?:[A-Z]{2,4}|local time|Brussels time|hora de Brasília)\)?)?\s*,?\s*(?:on|am|le|el|del|do dia|do|del giorno|il|op|of)?\s*$)"
)
_DEADLINE_AFTER = re.compile(r"^\.?\s*(?:\s*[（(][^）)]{1,4}[）)])?\s*(?:\d{1,2}\s*時|\d{1,2}:\d\d)?\s*(?:まで|까지|前|以前|之前|为止|截止)")
_START_BEFORE = re.compile(
    r"(?i)(?:\bfrom|starting(?: on| from)?|beginning(?: on)?|as of|as from|with effect from|effective(?: on| from)?|"
    r"(?:ab|seit|vom)(?: dem)?|à compter du|à partir du|dès le|a partir del?|desde el|a partir de|a decorrer de|"
    r"a partire dal|a decorrere dal|dal|vanaf|met ingang van|mulai(?: berlaku)?(?: pada)?(?: tanggal)?|sejak|自)\W{0,3}\s*$"
)
_START_AFTER = re.compile(r"^\.?\s*(?:[（(][^）)]{1,4}[）)])?\s*(?:起|から|부터|以后|以降)")

_COMMENT = _cues(
    r"\bcomment", r"consultation", r"submission", r"\bresponses?\b", r"\brespond\b", r"\bviews\b", r"call for evidence",
    r"\bfeedback", r"have your say", r"\binvit(?:e|es|ed|ing)\b", r"representations", r"\bevidence\b",
    r"stellungnahme", r"konsultation", r"anhörung", r"\bcommentaires", r"observations", r"contributions?",
    r"alegaciones", r"observaciones", r"comentarios", r"consulta", r"contribuiç", r"sugest", r"manifesta",
    r"osservazioni", r"commenti", r"contributi", r"pareri", r"reacties", r"reageren", r"reactie", r"consultatie", r"zienswijze", r"inspraak",
    r"\brespondents?\b", r"stellung (?:zu )?nehmen", r"rückmeldungen", r"\bréponses?\b", r"información pública", r"trámite de audiencia",
    r"aportaciones", r"sugerencias", r"tanggapan", r"masukan", r"konsultasi", r"意见", r"意見", r"パブリックコメント", r"의견", r"입법예고", r"행정예고", r"意見募集",
)
_EFFECTIVE = _cues(
    r"take[sn]? effect", r"took effect", r"taking effect", r"come[s]? into (?:force|effect|operation)", r"enters? into (?:force|application)",
    r"in force", r"\bappl(?:y|ies|icable)\b", r"\bcommence", r"\bstart", r"\bbegin", r"implemented", r"\beffective\b",
    r"go(?:es)? live", r"kick[s]? in", r"in kraft", r"\bgilt\b", r"gelten", r"anwendbar", r"anzuwenden", r"wirksam",
    r"entre(?:ra)? en vigueur", r"s'appliqu", r"applicable", r"entra(?:rá)? en vigor", r"vigencia", r"se aplicar",
    r"entra(?:rá)? em vigor", r"vigor", r"passa(?:m)? a valer", r"aplica", r"in vigore", r"si appli", r"applica",
    r"in werking", r"van kracht", r"berlaku", r"施行", r"实施", r"生效", r"適用", r"시행", r"적용", r"発効",
)
_EVENT = _cues(
    r"webinar", r"workshop", r"information session", r"roundtable", r"round-table", r"\bhearing", r"briefing",
    r"conference", r"seminar", r"tutorial", r"open house", r"\bevent\b", r"town hall", r"\bmeeting\b", r"appear (?:at|before)",
    r"\bsessions?\b", r"veranstaltung", r"informationsveranstaltung", r"séminaire", r"réunion", r"conférence",
    r"jornada", r"seminario", r"reunión", r"evento", r"reunião", r"audiência pública", r"audizione", r"incontro",
    r"説明会", r"セミナー", r"설명회", r"공청회", r"간담회", r"세미나", r"说明会", r"座谈会", r"研讨会", r"听证会", r"宣讲",
)
_STATISTIC = _cues(
    r"period ending", r"periods? ended", r"quarter ending", r"year ending", r"reporting period", r"between\b[^.;]{0,40}$",
    r"zeitraum", r"période", r"período", r"periodo", r"期間中", r"기간 동안",
)
_PAST = _cues(
    r"received royal assent", r"royal assent", r"\bwas (?:published|signed|adopted|approved|passed|issued)", r"\bclosed\b",
    r"\bended\b", r"\bsince\b", r"took effect", r"came into force", r"entered into force", r"\bsigned\b",
)
_PUBLISHING = _cues(  # "will be published in the Federal Register on …": a publication, not a duty
    r"\b(?:be|was|is|been) published\b[^.;]{0,40}$", r"veröffentlicht werden", r"sera publié", r"será publicad", r"sarà pubblicat",
)
_COMPLIANCE = _cues(
    r"\bmust\b", r"\bshall\b", r"required", r"\bhave until", r"\bhas until", r"deadline", r"comply", r"\bregister",
    r"\breport", r"\bsubmit", r"\bnotify", r"\bfile\b", r"\breply", r"\brecertif", r"\bcomplete", r"\bimplement",
    r"müssen", r"frist", r"doivent", r"deben", r"devem", r"deverão", r"devono", r"dovranno", r"应当", r"须", r"报告",
    r"までに", r"報告", r"해야", r"하여야", r"정비", r"유예",
)

_DUTY = _cues(r"\bmust\b", r"\bshall\b", r"\brequired\b", r"deadline", r"müssen", r"\bmuss\b", r"doivent", r"\bdoit\b", r"devront",
              r"deben", r"deberán", r"\bdebe\b", r"devem", r"\bdeve\b", r"deverá", r"deverão", r"devono", r"dovrà", r"dovranno",
              r"moeten", r"\bmoet\b", r"\bdienen\b", r"应当", r"须", r"해야", r"하여야", r"なければならない", r"必要があります")

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“(\[A-ZÀ-Ý0-9\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af])|(?<=[。！？])|\n+")
_ABBREV = re.compile(r"(?i)(?:\b(?:no|nos|nr|art|arts|abs|para|paras|sec|u\.s|e\.g|i\.e|cf|vs|v|st|dr|mr|mrs|ms|inc|ltd|co|corp|jr|sr|"
                     r"op|ff|ca|bzw|vgl|nº|n°|núm|sra|sr|dott|prof|gen|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)|\b[A-Z]|\b\d{1,2})\.$")


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; abbreviations and German ordinals ("1. Juli") do not end one."""
    spans, start = [], 0
    for boundary in _SENTENCE_END.finditer(text):
        if boundary.group().strip() == "" and boundary.start() > 0 and _ABBREV.search(text[max(0, boundary.start() - 8):boundary.start()]):
            if "\n" not in boundary.group():
                continue
        # a Korean numeric date "2027. 6. 30." is not three sentences
        if (boundary.group().strip() == "" and re.search(r"(?:19|20)\d\d\.$", text[max(0, boundary.start() - 5):boundary.start()])
                and re.match(r"\d{1,2}\.\s?\d{1,2}\.?", text[boundary.end():])):
            continue
        end = boundary.start()
        if text[start:end].strip():
            spans.append((start, end))
        start = boundary.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


_CLAUSE_BREAK = re.compile(r"[;；：]|:(?=\s)|(?<=\S)\s[–—-]\s|,\s(?=(?:and|but|while|whereas|which|und|et|y|e|mais|pero|ma)\s)|[、，]")


def _clause(text: str, sentence: tuple[int, int], start: int, end: int) -> tuple[int, int]:
    """Bounds of the clause around [start, end) within its sentence (split at ; : dashes and ', and')."""
    s, e = sentence
    left = s
    for brk in _CLAUSE_BREAK.finditer(text, s, start):
        left = brk.end()
    right = e
    found = _CLAUSE_BREAK.search(text, end, e)
    if found:
        right = found.start()
    return left, right


# --- the extractor ----------------------------------------------------------------------------


@dataclass
class _Candidate:
    day: date
    start: int
    end: int
    relative: bool = False


def extract_dates(title: str, text: str, published: date | None, lang: str | None = None) -> list[KeyDate]:
    """The key dates of a development, in text order, one per (date, type)."""
    body = text or ""
    mentions = find_mentions(body, published, lang)
    spans = sentences(body)
    candidates = [_Candidate(m.day, m.start, m.end) for m in mentions]
    candidates += _relative_dates(body, spans, mentions, published)
    candidates.sort(key=lambda c: c.start)
    results: list[KeyDate] = []
    seen: set[tuple[date, str]] = set()
    for candidate in candidates:
        if published and candidate.day <= published:
            continue
        sentence = next(((s, e) for s, e in spans if s <= candidate.start < e), (0, len(body)))
        typed = _classify(body, sentence, spans, candidate, published is None, mentions)
        if typed is None:
            continue
        kind, phrase = typed
        if (candidate.day, kind) in seen:
            continue
        seen.add((candidate.day, kind))
        results.append(KeyDate(candidate.day, kind, phrase))
    return results


def _relative_dates(text: str, spans: list[tuple[int, int]], mentions: list[Mention], published: date | None) -> list[_Candidate]:
    found: list[_Candidate] = []
    for pattern in (_REL_EU, _REL_CJK):
        for match in pattern.finditer(text):
            n = _number(match.group("n"))
            if not n:
                continue
            phrase = match.group(0)
            groups = match.groupdict()
            if groups.get("self"):
                kind = "today"   # "自本通知印发之日起": from this notice's own date
            elif groups.get("anchor") in ("公告", "공고", "印发"):
                continue         # some other notice's date: unknown
            else:
                kind = _anchor_kind(groups["anchor"] if groups.get("anchor") else phrase)
            # "… of its publication in the Official Journal": the words after say which publication
            here = next(((s, e) for s, e in spans if s <= match.start() < e), (0, len(text)))
            context = text[match.start():min(here[1], match.end() + 60)]
            anchor = _anchor(text, spans, mentions, match.start(), kind, published, context)
            if anchor is None:
                continue
            try:
                day = _shift(anchor, n, match.group("unit"))
            except (ValueError, OverflowError):
                continue
            found.append(_Candidate(day, match.start(), match.end(), relative=True))
    return found


_JOURNAL = re.compile(r"(?i)official journal|journal officiel|amtsblatt|gesetzblatt|federal register|gazette|gazzetta ufficiale|"
                      r"bolet[íi]n oficial|\bBOE\b|di[áa]rio oficial|\bDOU\b|diario oficial|staatscourant|staatsblad|官報|公報|관보|政府公报")
_PUBLISHED_NEAR = re.compile(r"(?i)publish|publicad|publicado|publicada|pubblicat|veröffentlicht|verkündet|publié|公布|发布|公表|공포|게재|官報|official journal|gazette|register")
_TODAY = re.compile(_ANCHOR_WORDS["today"], re.I)


def _anchor(text: str, spans: list[tuple[int, int]], mentions: list[Mention], at: int, kind: str | None,
            published: date | None, phrase: str) -> date | None:
    """The day a relative date counts from: a publication date the text states (same sentence, else
    the nearest one before), today's date when the text says so, or the date the rule commences."""
    if kind is None:
        return None
    if kind == "today" or (kind == "publication" and re.search(r"(?i)today|odiern|heute|hoy|hoje|aujourd|本日|오늘", phrase)):
        return published
    here = next((i for i, (s, e) in enumerate(spans) if s <= at < e), None)
    if here is None:
        return None
    # publication in a named journal counts only from a date stated for that journal, not from the
    # release's own "published today" (a draft's future publication in the BOE is not today's)
    journal = kind == "publication" and _JOURNAL.search(phrase)
    if kind == "commencement":
        effective = [m for m in mentions if published is None or m.day > published]
        for m in effective:
            s = next(((a, b) for a, b in spans if a <= m.start < b), None)
            if s and _EFFECTIVE.search(text[s[0]:s[1]]) and not _COMMENT.search(text[max(s[0], m.start - 40):m.start]):
                return m.day
        return None
    for index in range(here, max(-1, here - 4), -1):
        s, e = spans[index]
        sentence = text[s:e]
        if not _PUBLISHED_NEAR.search(sentence) or (journal and not _JOURNAL.search(sentence)):
            continue
        days = [m for m in mentions if s <= m.start < e and m.start < (at if index == here else e) and m.explicit_year]
        if index == here and not days:
            days = [m for m in mentions if s <= m.start < e and m.explicit_year and m.start > at]
        if days:
            if _TODAY.search(sentence) and published:
                return published
            return days[-1].day
        if _TODAY.search(sentence) and published and re.search(r"(?i)publish|pubblicat|publicad|veröffentlich|publié|公布|发布|공포|公表", sentence):
            return published
    return None


def _classify(text: str, sentence: tuple[int, int], spans: list[tuple[int, int]], c: _Candidate,
              undated: bool, mentions: list[Mention] = ()) -> tuple[str, str] | None:
    """The type of a dated candidate from the words around it, and the phrase that states it; None to drop."""
    s, e = sentence
    left, right = _clause(text, sentence, c.start, c.end)
    before = text[max(s, c.start - 60):c.start]
    after = text[c.end:min(e, c.end + 24)]
    clause = text[left:right]
    # a short heading line just before (【意見募集期間】, "Comment period:") speaks for the date under it
    heading = ""
    index = next((i for i, span in enumerate(spans) if span == sentence), None)
    if index:
        ps, pe = spans[index - 1]
        if pe - ps <= 40:
            heading = text[ps:pe]
    local = text[max(left, c.start - 120):min(right, c.end + 60)]
    if _EVENT.search(clause) and not _COMMENT.search(text[max(left, c.start - 40):c.start]):
        return None
    previous = max((m.end for m in mentions if m.end <= c.start), default=0)
    statistic = _STATISTIC.search(text, max(left, c.start - 60), c.start)
    if statistic and (statistic.start() >= previous or statistic.group().lower().startswith("between")):
        return None
    if undated and _PAST.search(text[max(left, c.start - 60, previous):c.start]):
        return None
    if _PUBLISHING.search(text[max(left, c.start - 50):c.start]):
        return None
    timed = _TIME_OF_DAY.search(before)
    deadline = bool(_DEADLINE_BEFORE.search(before) or _DEADLINE_AFTER.search(after)
                    or (timed and _DEADLINE_BEFORE.search(before[:timed.start()])))
    starts = bool(_START_BEFORE.search(before) or _START_AFTER.search(after))
    relative_deadline = c.relative and (
        re.search(r"(?i)\bwithin\b|\bentro\b|\binnerhalb\b|\bdans un délai\b|\bdentro de\b|\bno prazo\b|\bin\s+den\s+|\bbinnen\b",
                  text[max(left, c.start - 60):c.end])
        or re.match(r"\s*(?:以内|内|이내|안에)", text[c.end:c.end + 4]))
    comment = _COMMENT.search(local) or (heading and _COMMENT.search(heading))
    if re.search(r"(?i)\bclos(?:e|es|ing)\b|截止|마감|締切", text[max(left, c.start - 60):c.start]) and comment:
        kind = "comments_due"
    elif (deadline or relative_deadline) and comment:
        kind = "comments_due"
    elif deadline or relative_deadline:
        kind = "compliance"
    elif _EFFECTIVE.search(local):
        kind = "effective"
    elif starts:
        # "Ab dem 1. Januar 2027 müssen Anbieter …": a duty that applies from a date is that date's effect;
        # but the first day of a range ("from 1 March to 30 April") only opens a window
        if _RANGE_END.match(after):
            return None
        kind = "effective"
    elif _DUTY.search(local) and re.search(r"(?i)\bon\s*$|\bam\s*$|\ble\s*$|\bel\s*$|\bem\s*$|\bil\s*$", before):
        kind = "compliance"
    else:
        kind = None
    if kind is None:
        return None
    return kind, _phrase(text, left, right, c, mentions)


_RANGE_END = re.compile(r"(?i)^\s*(?:[（(][^）)]{1,4}[）)])?\s*(?:to|until|through|till|bis|au|al|a|à|até|tot|sampai|hingga|~|–|-|から|부터|至)\s*"
                        r"(?:the\s+|le\s+|el\s+|o\s+|il\s+|zum\s+|dem\s+)?(?:\d|[A-Z][a-z]+\s+\d|令和|平成)")
_CUE_START = re.compile(
    r"(?i)\b(?:must|shall|will|may|have|has|are|is|can|should|submissions?|comments?|responses?|the call|"
    r"contributions?|[a-z]+s? (?:close|take|apply|enter|commence|start))\b"
)


def _phrase(text: str, left: int, right: int, c: _Candidate, mentions: list[Mention] = ()) -> str:
    """The clause around the date, from after any earlier date in it, at most ~12 words before the
    date, to the date and its CJK suffix ("までに", "까지", "起施行")."""
    for m in mentions:
        if left <= m.start and m.end <= c.start and m.end > left:
            left = m.end
    start = left
    words = list(re.finditer(r"\S+", text[left:c.start]))
    if len(words) > 12:
        start = left + words[-12].start()
    end = c.end
    tail = re.match(r"(?:\.(?=\s*(?:까지|부터)))?\s*(?:[（(][^）)]{1,6}[）)])?\s*(?:\d{1,2}\s*時|\d{1,2}:\d\d)?\s*(?:までに|まで|까지|前完成|前|起施行|起|부터 시행된다|부터 시행|부터|から|(?:\s*[（(][^）)]*[）)]))?",
                    text[end:right])
    if tail:
        end += len(tail.group().rstrip())
    phrase = text[start:end].strip(" ,;:-–—\n")
    return " ".join(phrase.split())
