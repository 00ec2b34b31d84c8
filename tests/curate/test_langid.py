"""Language ID on real sentences written by people: Django's translation catalogues."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import django
import pyarrow as pa
import pytest

from weft.curate.langid import LanguageID, load_model, predict
from weft.curate.schema import KEPT, REMOVED, ROW_SCHEMA
from weft.curate.spec import LangIdSpec

# Django locale → fastText label
LANGUAGES = {
    "de": "de",
    "fr": "fr",
    "es": "es",
    "it": "it",
    "pt": "pt",
    "nl": "nl",
    "ru": "ru",
    "pl": "pl",
    "sv": "sv",
    "tr": "tr",
    "ja": "ja",
    "ar": "ar",
    "zh_Hans": "zh",
    "ko": "ko",
}
_PLACEHOLDER = re.compile(r"%\(\w+\)s|%s|%d|\{\w*\}|<[^>]+>|“|”|\"")


def sentences(locale: str, minimum: int = 30) -> list[str]:
    """Translated messages of Django's admin and core catalogues, placeholders removed."""
    root = Path(django.__file__).parent
    out = []
    for mo in (root / "contrib/admin/locale", root / "conf/locale"):
        with open(mo / locale / "LC_MESSAGES/django.mo", "rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
        for key, text in catalog.items():
            if key and isinstance(text, str):
                clean = " ".join(_PLACEHOLDER.sub(" ", text).split())
                if len(clean) >= minimum:
                    out.append(clean)
    return out


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return load_model()


@pytest.mark.parametrize("locale", sorted(LANGUAGES))
def test_sentences_written_by_people_are_identified(model, locale: str) -> None:  # type: ignore[no-untyped-def]
    texts = sentences(locale)
    assert len(texts) >= 15, locale
    right = [predict(model, t)[0] == LANGUAGES[locale] for t in texts]
    assert sum(right) / len(right) >= 0.85, (locale, sum(right), len(right))


def table(texts: list[str]) -> pa.Table:
    n = len(texts)
    return (
        pa.table({f.name: pa.nulls(n, f.type) for f in ROW_SCHEMA}, schema=ROW_SCHEMA)
        .set_column(ROW_SCHEMA.get_field_index("text"), ROW_SCHEMA.field("text"), pa.array(texts))
        .set_column(
            ROW_SCHEMA.get_field_index("status"), ROW_SCHEMA.field("status"), pa.array([KEPT] * n)
        )
    )


def test_rows_outside_the_allow_list_or_unsure_are_removed_with_the_reason() -> None:
    german, french = sentences("de")[0], sentences("fr")[0]
    english = "The quick brown fox jumps over the lazy dog near the river bank"
    unsure = "Internet Computer Software"  # English words every language borrows
    stage = LanguageID(LangIdSpec(allowed=["de", "en"], min_score=0.5))
    out = stage(table([german, french, english, unsure]))
    assert out["lang"].to_pylist() == ["de", "fr", "en", "en"]
    assert out["status"].to_pylist() == [KEPT, REMOVED, KEPT, REMOVED]
    assert out["reason"].to_pylist() == [None, "language_not_allowed", None, "language_uncertain"]
    assert "fr" in out["detail"].to_pylist()[1]
    assert all(0 <= s <= 1 for s in out["lang_score"].to_pylist())


def test_an_empty_allow_list_keeps_every_language() -> None:
    out = LanguageID(LangIdSpec())(table([sentences("ja")[0], sentences("ar")[0]]))
    assert out["status"].to_pylist() == [KEPT, KEPT]
    assert out["lang"].to_pylist() == ["ja", "ar"]
