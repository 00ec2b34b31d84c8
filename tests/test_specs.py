"""Specs: the shipped ones load; a bad one is an error naming the file and the field."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from pydantic import model_validator

from weft.curate.spec import CurateSpec
from weft.models import registry
from weft.quality.spec import QualitySpec
from weft.registry.spec import PromoteSpec
from weft.specs import FieldError, SpecError, StorageSpec, _Spec, load_spec, parse_spec, spec_hash
from weft.train.spec import TrainSpec
from weft.tune.spec import load_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_pipeline_specs_load(path: Path) -> None:
    assert load_spec(CurateSpec, path).inputs


@pytest.mark.parametrize("path", sorted((ROOT / "jobs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_job_specs_load(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # a sweep names its base training spec from the repository's root
    if path.name.startswith("sweep-"):
        assert load_sweep(path).space
    elif path.name.startswith("promote-"):
        assert load_spec(PromoteSpec, path).gate.metrics
    elif path.name == "quality.yaml":
        assert load_spec(QualitySpec, path).name
    else:
        assert load_spec(TrainSpec, path).model.kind in registry.KINDS


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


BASE = "name: t\ninputs:\n  - uri: data\n    format: webdataset\noutput: out\n"


def test_a_typo_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "exact_dedup:\n  mach: text\n")
    with pytest.raises(SpecError) as err:
        load_spec(CurateSpec, path)
    assert str(err.value) == f"{path}: exact_dedup.mach: unknown field (check the spelling)"


def test_a_bad_value_in_a_list_names_its_index(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: t\ninputs:\n  - uri: a\n    format: webdataset\n"
        "  - uri: b\n    format: tarball\noutput: out\n",
    )
    with pytest.raises(SpecError, match=r"spec.yaml: inputs\[1\].format: Input should be"):
        load_spec(CurateSpec, path)


def test_validate_section_is_checked_under_its_own_name(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "validate:\n  min_text_chars: 10\n  max_text_chars: 5\n")
    with pytest.raises(SpecError, match="validate: min_text_chars is larger than max_text_chars"):
        load_spec(CurateSpec, path)
    ok = load_spec(CurateSpec, write(tmp_path, BASE + "validate:\n  max_text_chars: 50\n"))
    assert ok.validate_.max_text_chars == 50


def with_input_field(line: str) -> str:
    return BASE.replace("output:", f"    {line}\noutput:")


def test_input_read_limits_are_checked_under_their_names(tmp_path: Path) -> None:
    default = load_spec(CurateSpec, write(tmp_path, BASE)).inputs[0]
    assert (default.max_record_bytes, default.max_file_bytes) == (64 << 20, 16 << 30)
    assert default.allow_missing is False
    with pytest.raises(SpecError, match=r"inputs\[0\].max_record_bytes: Input should be greater"):
        load_spec(CurateSpec, write(tmp_path, with_input_field("max_record_bytes: 0")))
    with pytest.raises(SpecError, match=r"inputs\[0\]: max_record_bytes is larger than max_file"):
        load_spec(CurateSpec, write(tmp_path, with_input_field("max_file_bytes: 1000")))


class Bounds(_Spec):
    low: int = 0
    high: int = 1

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.low > self.high:
            raise FieldError("high", f"below low ({self.low})")
        return self


class Ranges(_Spec):
    ranges: list[Bounds]


def test_a_field_error_names_the_field_below_the_one_validated() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(Ranges, {"ranges": [{}, {"low": 2}]}, "r.yaml")
    assert str(err.value) == "r.yaml: ranges[1].high: below low (2)"
    assert str(FieldError("a.b", "why")) == "a.b: why"  # read alone


def test_missing_file_and_broken_yaml_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the file"):
        load_spec(CurateSpec, tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(CurateSpec, write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(SpecError, match=r"\(top level\): expected a mapping"):
        load_spec(CurateSpec, write(tmp_path, "- just\n- a list\n"))


SECRET = "planted-secret-1c8b0e"
STORAGE = f"storage:\n  access_key_id: AKIDEXAMPLE\n  secret_access_key: {SECRET}\n"


def test_storage_secrets_read_masked_wherever_a_spec_is_shown(tmp_path: Path) -> None:
    spec = load_spec(CurateSpec, write(tmp_path, BASE + STORAGE + f"  session_token: {SECRET}\n"))
    shown = [repr(spec), str(spec), repr(spec.storage), str(spec.storage), spec.model_dump_json()]
    shown += [json.dumps(spec.model_dump(mode="json", by_alias=True)), str(spec.model_dump())]
    assert not [text for text in shown if SECRET in text]
    dumped = spec.model_dump(mode="json")["storage"]
    assert dumped == {
        "endpoint_url": None,
        "region": None,
        "access_key_id": "AKIDEXAMPLE",  # names the identity; not a credential on its own
        "secret_access_key": "**********",
        "session_token": "**********",
    }
    assert spec.storage.secret_access_key is not None
    assert spec.storage.secret_access_key.get_secret_value() == SECRET
    # pickled (as Ray sends it to workers) the spec keeps the real value
    copy = pickle.loads(pickle.dumps(spec))
    assert copy == spec and copy.storage.secret_access_key.get_secret_value() == SECRET


def test_a_misspelt_secret_field_is_named_but_its_value_not_shown(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + f"storage:\n  secret_key: {SECRET}\n")
    with pytest.raises(SpecError) as err:
        load_spec(CurateSpec, path)
    assert str(err.value) == f"{path}: storage.secret_key: unknown field (check the spelling)"


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (CurateSpec, {"name": "t", "inputs": [{"uri": "d", "format": "jsonl"}], "output": "o"}),
        (TrainSpec, {"name": "t", "model": "clip-tiny", "data": {"uri": "d"}}),
    ],
    ids=["curate", "train"],
)
def test_spec_hash_does_not_depend_on_the_credentials(
    model: type[CurateSpec | TrainSpec], body: dict[str, object]
) -> None:
    plain = parse_spec(model, body)
    hashes = {
        spec_hash(parse_spec(model, body | {"storage": StorageSpec(**keys).model_dump()}))
        for keys in (
            {},
            {"access_key_id": "AKID1", "secret_access_key": SECRET},
            {"access_key_id": "AKID2", "secret_access_key": "rotated", "session_token": "t"},
        )
    }
    assert hashes == {spec_hash(plain)}
    assert spec_hash(parse_spec(model, body | {"name": "other"})) != spec_hash(plain)
