"""Specs: the shipped ones load; a bad one is an error naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from weft.specs import CurateSpec, SpecError, load_spec

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_pipeline_specs_load(path: Path) -> None:
    assert load_spec(CurateSpec, path).inputs


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


def test_missing_file_and_broken_yaml_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the file"):
        load_spec(CurateSpec, tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(CurateSpec, write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(SpecError, match=r"\(top level\): expected a mapping"):
        load_spec(CurateSpec, write(tmp_path, "- just\n- a list\n"))
