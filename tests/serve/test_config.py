"""The shipped Serve config is valid for Ray and for the app, and bad app args are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from weft.serve.local import load_config
from weft.serve.spec import AppArgs
from weft.specs import SpecError, parse_spec

CONFIG = Path(__file__).parents[2] / "serve" / "weft.yaml"


def test_the_shipped_config_passes_rays_schema_and_the_apps_args() -> None:
    (app,) = load_config(CONFIG).applications
    args = parse_spec(AppArgs, app.args or {}, "args")
    assert app.import_path == "weft.serve.app:build"
    assert set(args.refs) == {"clip", "captioner", "diffusion"}
    assert args.batching.max_size == 16 and args.batching.wait_ms == 1
    names = {d.name for d in app.deployments}
    assert names == args.deployments() == {"ingress", "captioner", "diffusion", "search", "safety"}


def test_the_shipped_config_bounds_every_deployment_and_answers_before_the_proxy_gives_up() -> None:
    config = load_config(CONFIG)
    (app,) = config.applications
    args = parse_spec(AppArgs, app.args or {}, "args")
    for d in app.deployments:
        assert d.max_ongoing_requests and d.max_queued_requests, d.name
    proxy = config.http_options.request_timeout_s
    assert proxy is not None and proxy > args.body_timeout_s + args.timeout_s


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"batching": {"max_size": 0}}, "batching.max_size"),
        ({"batching": {"wait_ms": -1}}, "batching.wait_ms"),
        ({"clip": "weft-clip@champion", "captioner": None, "cache": 1}, "cache"),
        ({"public_url": "weft.example.com"}, "public_url"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_bad_app_args_are_refused_naming_the_field(args: dict[str, object], named: str) -> None:
    with pytest.raises(SpecError, match=named.replace(".", r"\.")):
        parse_spec(AppArgs, args, "args")


def test_a_config_ray_cannot_read_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications:\n  - name: weft\n    import_path: 7\n    route_prefix: 3\n")
    with pytest.raises(SpecError, match=r"bad\.yaml"):
        load_config(bad)


def test_a_deployment_the_app_does_not_make_is_refused_naming_it(tmp_path: Path) -> None:
    config = CONFIG.read_text()
    bad = tmp_path / "clip.yaml"  # the CLIP runs in the ingress: no `clip` deployment
    bad.write_text(config.replace("      - name: search\n", "      - name: clip\n"))
    with pytest.raises(SpecError, match=r"applications\.0\.deployments\.\d\.name: clip is not"):
        load_config(bad)
    apart = tmp_path / "apart.yaml"
    apart.write_text(bad.read_text().replace("clip_in_ingress: true", "clip_in_ingress: false"))
    (app,) = load_config(apart).applications
    assert "clip" in {d.name for d in app.deployments}


def test_a_misspelled_field_ray_would_drop_is_refused_naming_it(tmp_path: Path) -> None:
    """Ray's schema ignores unknown fields: `num_replica` would leave the default in place."""
    bad = tmp_path / "typo.yaml"
    text = CONFIG.read_text().replace("num_replicas: 1", "num_replica: 1", 1)
    bad.write_text(text.replace("  request_timeout_s:", "  request_timeout:"))
    with pytest.raises(SpecError) as refused:
        load_config(bad)
    assert str(refused.value).splitlines() == [
        f"{bad}: http_options.request_timeout: unknown field (check the spelling)",
        f"{bad}: applications.0.deployments.1.num_replica: unknown field (check the spelling)",
    ]
