"""Languages of the workspace: gettext catalogues (Babel) for Russian and English, the
viewer's language from a cookie or Accept-Language, and locale-aware money and dates."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, dates, numbers
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request

from aggregates.funnels import Funnel
from aggregates.rules import Department
from workspace.messages import ROLE_MSGIDS

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "ll_lang"
CURRENCY = "RUB"
LOCALE_DIR = Path(__file__).parent / "locale"
TEMPLATE_DIR = Path(__file__).parent / "templates"
NAME_KEY = "name:"
"""A configured name's catalogue key is ``name:`` and the name (``name:Court leads``)."""
ERROR_KEY = "error:"
"""A refusal's catalogue key is ``error:`` and its code (``error:lead_paused``)."""


def accepted_languages(header: str) -> list[str]:
    """The languages of an Accept-Language header, most wanted first (q=0 left out)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, index, tag.strip().lower()))
    return [tag for _, _, tag in sorted(weighted)]


def language_of(request: Request) -> str:
    """The viewer's choice (cookie), else the browser's (Accept-Language), else English."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    for tag in accepted_languages(request.headers.get("accept-language", "")):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def money(amount: Any, language: str, currency: str = CURRENCY) -> str:
    if amount is None:
        return "—"
    return numbers.format_currency(Decimal(amount), currency, locale=language)


def number(value: Any, language: str) -> str:
    if value is None:
        return "—"
    return numbers.format_decimal(value, locale=language)


def percent(value: Any, language: str) -> str:
    if value is None:
        return "—"
    return numbers.format_percent(value, locale=language, format="#,##0.#%")


def day(value: Any, language: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return dates.format_date(value, format="medium", locale=language)


def moment(value: Any, language: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return dates.format_datetime(value, format="medium", locale=language, tzinfo=value.tzinfo)


def named(value: Any, gettext: Callable[[str], str]) -> Any:
    """A configured name (a funnel's, a stage's, a department's, a status's...) in the
    viewer's language: its catalogue entry ``name:<name>``, or the name itself when the
    catalogue has none (a name added to the configuration shows until it is translated)."""
    if not isinstance(value, str) or not value:
        return value
    key = NAME_KEY + value
    shown = gettext(key)
    return value if shown == key else shown


ID_COLUMNS = frozenset(
    {"funnel", "deal_funnel", "stage", "from_stage", "to_stage", "department", "status"}
)
"""Report columns that hold a configured id (a funnel's, a stage's...), shown by name."""
_ID_NAMES: dict[str, str] = {}


def register_names(names: dict[str, str]) -> None:
    """The configured ids and their names (funnels, stages, departments, project
    statuses): an id column of a report shows the name, translated."""
    _ID_NAMES.clear()
    _ID_NAMES.update(names)


def configured_names(
    funnels: Iterable[Funnel],
    departments: Iterable[Department],
    statuses: Iterable[tuple[str, str]],
) -> dict[str, str]:
    """id → name of every configured funnel, stage, department and project status (the
    first wins where two share an id)."""
    found: dict[str, str] = {}
    for funnel in funnels:
        found.setdefault(funnel.id, funnel.name)
        for stage in funnel.stages:
            found.setdefault(stage.id, stage.name)
    for department in departments:
        found.setdefault(department.id, department.name)
    for status_id, name in statuses:
        found.setdefault(status_id, name)
    return found


def named_id(value: Any, column: str, gettext: Callable[[str], str]) -> Any:
    """A report cell: an id column's configured id shown by its name in the viewer's
    language; anything else as ``named``."""
    if column in ID_COLUMNS and isinstance(value, str) and value in _ID_NAMES:
        value = _ID_NAMES[value]
    return named(value, gettext)


def refusal(code: Any, message: Any, gettext: Callable[[str], str]) -> Any:
    """A refused command's words in the viewer's language: the catalogue's entry for its
    code (``error:<code>``: a rule of an aggregate or a guard), else the refusal's own
    message (which names the figures behind it)."""
    if isinstance(code, str) and code:
        key = ERROR_KEY + code
        shown = gettext(key)
        if shown != key:
            return shown
    return message


def language_name(language: str) -> str:
    name: str = Locale.parse(language).get_display_name(language) or language
    return name[:1].upper() + name[1:]


@cache
def translations(language: str) -> Translations:
    loaded = Translations.load(str(LOCALE_DIR), [language], domain="messages")
    if not isinstance(loaded, Translations):  # no catalogue: the source strings
        return Translations()
    return loaded


@cache
def environment(language: str) -> Environment:
    """The templates in one language (one environment per language, built once)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = lambda value, currency=CURRENCY: money(value, language, currency)
    env.filters["number"] = lambda value: number(value, language)
    env.filters["percent"] = lambda value: percent(value, language)
    env.filters["day"] = lambda value: day(value, language)
    env.filters["moment"] = lambda value: moment(value, language)
    gettext = translations(language).gettext
    env.filters["named"] = lambda value: named(value, gettext)
    env.filters["named_id"] = lambda value, column: named_id(value, column, gettext)
    env.filters["role"] = lambda value: gettext(ROLE_MSGIDS.get(value) or str(value))
    env.globals["refusal_words"] = lambda code, message: refusal(code, message, gettext)
    env.globals["language"] = language
    env.globals["languages"] = [(code, language_name(code)) for code in LANGUAGES]
    return env
