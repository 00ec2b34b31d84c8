"""The search page and dataset explorer in a real browser: Debian's headless Chromium, driven
by Selenium through Debian's chromedriver, against the live app on 127.0.0.1, over the demo
corpus curated (language ID on), a CLIP trained on it for a few steps, promoted and indexed.
The screenshots it takes go to WEFT_SCREENSHOTS (default `.weft/screenshots/`); the README's
are copies of them."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from PIL import Image, ImageDraw
from ray.serve.schema import ServeDeploySchema

from weft.curate.dataset import curated_table
from weft.curate.pipeline import curate
from weft.curate.shards import tar_shard
from weft.curate.spec import CurateSpec
from weft.demo.corpus import COLOURS, SHAPES
from weft.registry.promote import promote
from weft.registry.spec import PromoteSpec
from weft.serve import keys, local
from weft.serve.index import IndexSpec, build
from weft.specs import StorageSpec, parse_spec
from weft.train.run import train
from weft.train.spec import TrainSpec

pytestmark = pytest.mark.integration
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = Path(os.environ.get("WEFT_SCREENSHOTS", ".weft/screenshots"))
WAIT_S = 60
# Captions in French and German beside the demo's English ones: what the language filter picks.
FOREIGN = [
    ("fr", "circle", "red", "blue", "un grand cercle rouge sur un fond bleu"),
    ("fr", "square", "green", "white", "un petit carré vert sur un fond blanc"),
    ("fr", "circle", "yellow", "black", "un cercle jaune sur un fond noir, dessiné à la main"),
    ("fr", "square", "blue", "yellow", "un carré bleu au milieu d'un fond jaune"),
    ("de", "circle", "green", "black", "ein großer grüner Kreis auf schwarzem Hintergrund"),
    ("de", "square", "red", "white", "ein kleines rotes Quadrat auf weißem Hintergrund"),
    ("de", "circle", "blue", "yellow", "ein blauer Kreis auf einem gelben Hintergrund"),
    ("de", "square", "yellow", "blue", "ein gelbes Quadrat in der Mitte eines blauen Bildes"),
]


def _foreign_shard(folder: Path) -> None:
    """A WebDataset shard of drawn shapes captioned in French and German."""
    samples = []
    for i, (lang, shape, colour, bg, caption) in enumerate(FOREIGN):
        image = Image.new("RGB", (64, 64), COLOURS[bg])
        box = (12 + i, 14, 50 - i % 3, 52)
        draw = ImageDraw.Draw(image)
        if shape == "circle":
            draw.ellipse(box, fill=COLOURS[colour])
        else:
            draw.rectangle(box, fill=COLOURS[colour])
        png = io.BytesIO()
        image.save(png, format="PNG")
        samples.append((f"{lang}-{i:03d}", {"png": png.getvalue(), "txt": caption.encode()}))
    folder.mkdir(parents=True)
    (folder / "foreign-000.tar").write_bytes(tar_shard(samples))


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1600")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def site(
    demo_corpus: Path, tmp_path_factory: pytest.TempPathFactory, ray_session: None
) -> Iterator[dict[str, Any]]:
    """The app serving a trained, promoted and indexed CLIP over the curated demo corpus,
    and a headless Chromium; both stopped at the end of the module."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} missing: the browser test needs Debian's chromium and "
            "chromium-driver (apt-get install chromium chromium-driver)"
        )
    tmp = tmp_path_factory.mktemp("page")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp}/mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    _foreign_shard(tmp / "foreign")
    data = str(tmp / "curated")
    curate(
        parse_spec(
            CurateSpec,
            {
                "name": "page-demo",
                "inputs": [
                    {"uri": str(demo_corpus / "pairs"), "format": "webdataset"},
                    {"uri": str(tmp / "foreign"), "format": "webdataset"},
                ],
                "output": data,
                "nsfw": {"enabled": False},
            },
        )
    )
    trained = train(
        parse_spec(
            TrainSpec,
            {
                "name": "page-clip",
                "model": "clip-tiny",
                "data": {"uri": data, "val_percent": 10},
                "optim": {"lr": 1e-3, "warmup_steps": 1, "max_steps": 4, "batch_size": 8},
                "workers": {"count": 1, "cpus": 0.5},
                "eval": {"every_steps": 4, "batches": 1, "classes": list(SHAPES)},
                "output": str(tmp / "runs"),
            },
        )
    )
    gate = {"model": "page-clip", "gate": {"metrics": {"val/loss": {"better": "lower"}}}}
    assert trained.run_id and promote(parse_spec(PromoteSpec, gate), trained.run_id).passed
    index = str(tmp / "index")
    build(parse_spec(IndexSpec, {"data": data, "model": "page-clip@champion", "output": index}))
    keyfile = tmp / "keys.json"
    viewer = keys.add(keyfile, "page-viewer", None, 100_000, "viewer")
    args = {"clip": "page-clip@champion", "captioner": None, "diffusion": None}
    config = ServeDeploySchema.model_validate(
        {
            "applications": [
                {
                    "name": "weft-page",
                    "route_prefix": "/",
                    "import_path": "weft.serve.app:build",
                    "args": args | {"index": index, "readable": [], "keys": str(keyfile)},
                }
            ]
        }
    )
    (url,) = local.start(config, local.free_port())
    browser = _browser()
    headers = {"Authorization": f"Bearer {viewer}"}
    try:
        with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
            browser.get(url)
            _enter_key(browser, viewer)
            yield {"url": url, "browser": browser, "client": client, "data": data, "key": viewer}
    finally:
        browser.quit()
        local.stop()
        patch.undo()


def _wait(browser: Any, check: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_S).until(check, message=f"waited {WAIT_S} s for {what}")


def _enter_key(browser: Any, key: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "api-key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    _wait(
        browser,
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "#lang option")) > 1,
        "the dataset's languages",
    )


def _search(browser: Any, text: str = "", k: int = 8, lang: str = "") -> list[Any]:
    """Run a search from the form; the result cards once every thumbnail has loaded."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.execute_script("document.getElementById('results').replaceChildren()")
    query = browser.find_element(By.ID, "q")
    query.clear()
    if text:
        query.send_keys(text)
    k_box = browser.find_element(By.ID, "k")
    k_box.clear()
    k_box.send_keys(str(k))
    Select(browser.find_element(By.ID, "lang")).select_by_value(lang)
    browser.find_element(By.ID, "search-button").click()
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#results .hit"), "results")
    _wait(browser, _images_loaded("#results"), "the results' thumbnails")
    return list(browser.find_elements(By.CSS_SELECTOR, "#results .hit"))


def _images_loaded(where: str) -> Any:
    script = (
        f"const imgs = [...document.querySelectorAll('{where} img')];"
        "return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);"
    )
    return lambda b: b.execute_script(script)


def _shot(browser: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / name))


def test_the_page_and_its_files_need_no_key_but_every_api_call_does(site: dict[str, Any]) -> None:
    with httpx.Client(base_url=site["url"], timeout=30) as anonymous:
        page = anonymous.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert '<base href="/">' in page.text and site["key"] not in page.text
        assert anonymous.get("/ui/app.js").status_code == 200
        assert anonymous.get("/ui/secret.txt").status_code == 404
        assert anonymous.get("/v1/dataset").status_code == 401
        assert anonymous.get("/v1/dataset/rows").status_code == 401
    client = site["client"]
    bad = client.get("/v1/dataset/rows", params={"status": "lost"})
    assert bad.status_code == 422 and "query.status" in bad.json()["detail"]
    assert client.get("/v1/dataset/rows/nope").status_code == 404
    assert "not in the index" in client.get("/v1/items/nope/lineage").json()["detail"]


def test_a_text_query_shows_k_thumbnails_that_load(site: dict[str, Any]) -> None:
    browser = site["browser"]
    hits = _search(browser, "a red circle on a blue background", k=6)
    assert len(hits) == 6
    assert "6 results from page-clip" in browser.find_element("id", "search-summary").text
    _shot(browser, "search.png")


def test_an_uploaded_image_finds_itself_first(site: dict[str, Any], tmp_path: Path) -> None:
    table = curated_table(site["data"], StorageSpec(), ["id", "image", "image_hash"])
    rows = [r for r in table.to_pylist() if r["image"]]
    chosen = rows[len(rows) // 2]
    picture = tmp_path / "query.img"
    picture.write_bytes(chosen["image"])
    browser = site["browser"]
    browser.find_element("id", "image").send_keys(str(picture))
    _wait(browser, lambda b: "Image chosen" in b.find_element("id", "status").text, "the image")
    try:
        hits = _search(browser, "", k=5)
    finally:
        browser.find_element("id", "clear-image").click()
    top = hits[0].get_attribute("data-id")
    image_of = {r["id"]: r["image_hash"] for r in rows}
    assert image_of[top] == chosen["image_hash"]


def test_a_language_filter_shows_only_that_language(site: dict[str, Any]) -> None:
    browser = site["browser"]
    for lang in ("fr", "de"):
        hits = _search(browser, "cercle rouge", k=10, lang=lang)
        langs = {h.find_element("css selector", ".meta").text.split(" ")[0] for h in hits}
        assert langs == {lang}, f"filter {lang}: results in {langs}"


def test_a_result_opens_its_lineage_back_to_the_source_object(site: dict[str, Any]) -> None:
    browser = site["browser"]
    hits = _search(browser, "a small green square", k=4)
    item = hits[0].get_attribute("data-id")
    hits[0].click()
    panel = _wait(
        browser,
        lambda b: (
            b.find_element("id", "lineage").is_displayed()
            and item in b.find_element("id", "lineage").text
            and b.find_element("id", "lineage")
        ),
        "the lineage",
    )
    expected = site["client"].get(f"/v1/items/{item}/lineage").json()
    text = panel.text
    assert expected["source"]["uri"] in text and expected["source"]["uri"].endswith(".tar")
    assert f"page-clip ({expected['training']['run_id']})" in text
    assert "(the indexed dataset)" in text and expected["dataset"]["content_hash"] in text
    assert "page-clip v1" in text and "champion" in text
    # the training run logged the curated version as its MLflow dataset input
    (logged,) = expected["training"]["datasets"]
    assert logged == f"curated ({expected['dataset']['content_hash']}, training)"
    assert browser.switch_to.active_element.get_attribute("id") == "lineage-title"
    _shot(browser, "lineage.png")


def test_the_explorer_shows_a_removed_duplicate_beside_the_row_it_duplicates(
    site: dict[str, Any],
) -> None:
    from selenium.webdriver.support.ui import Select

    removed = site["client"].get("/v1/dataset/rows", params={"status": "removed"}).json()
    duplicates = [r for r in removed["rows"] if r["duplicate_of"] and r["thumbnail_url"]]
    # a near duplicate if curation found one: it shows what similarity < 1 looks like
    duplicate = min(duplicates, key=lambda r: r["reason"] != "near_duplicate")
    browser = site["browser"]
    browser.find_element("id", "tab-explore").click()
    _wait(browser, lambda b: b.find_elements("css selector", "#rows .row"), "the kept rows")
    Select(browser.find_element("id", "part")).select_by_value("removed")
    Select(browser.find_element("id", "reason")).select_by_value(duplicate["reason"])
    browser.find_element("css selector", "#rows-form button[type=submit]").click()
    card = _wait(
        browser,
        lambda b: b.find_elements("css selector", f'#rows .row[data-id="{duplicate["id"]}"]'),
        "the removed duplicate",
    )[0]
    card.click()
    _wait(browser, lambda b: len(b.find_elements("css selector", "#row-body .side")) == 2, "pair")
    _wait(browser, _images_loaded("#row-body"), "both rows' thumbnails")
    this, kept = browser.find_elements("css selector", "#row-body .side")
    assert duplicate["id"] in this.text and duplicate["reason"] in this.text
    assert duplicate["duplicate_of"] in kept.text and "kept" in kept.text
    assert f"similarity {duplicate['similarity']:.3f}" in kept.text
    browser.set_window_size(1280, 1900)  # the report, the rows and the pair in one picture
    browser.execute_script("window.scrollTo(0, 0)")
    _shot(browser, "explorer.png")
    browser.set_window_size(1280, 1600)
    browser.find_element("id", "tab-search").click()


def test_weft_lineage_prints_the_chain_the_api_answers(site: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from weft.cli import app

    hit = site["client"].post("/v1/retrieval/search", json={"text": "circle", "k": 1}).json()
    item = hit["hits"][0]["id"]
    expected = site["client"].get(f"/v1/items/{item}/lineage").json()
    index = str(Path(site["data"]).parent / "index")
    args = ["lineage", item, "--model", "page-clip@champion", "--index", index]
    printed = CliRunner().invoke(app, args)
    assert printed.exit_code == 0, printed.output
    for line in (
        f"uri: {expected['source']['uri']}",
        f"content hash: {expected['dataset']['content_hash']}",
        f"run: page-clip ({expected['training']['run_id']})",
        "version: page-clip v1",
        "aliases: champion",
    ):
        assert line in printed.output
    as_json = CliRunner().invoke(app, [*args, "--json"])
    assert json.loads(as_json.output) == expected
    missing = CliRunner().invoke(app, ["lineage", "nope", *args[2:]])
    assert missing.exit_code != 0 and "nope: not an item of the index" in missing.output
    nowhere = CliRunner().invoke(app, [*args[:-1], str(Path(index).parent / "nowhere")])
    assert nowhere.exit_code != 0 and "no search index here (weft index)" in nowhere.output


# Every visible control: named by a label, aria-label or its own text.
UNLABELLED = """
const seen = [...document.querySelectorAll('input, select, button, textarea')]
  .filter(e => e.offsetParent !== null);
return seen.filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label')
  || e.getAttribute('aria-labelledby') || (e.tagName === 'BUTTON' && e.textContent.trim())))
  .map(e => e.outerHTML.slice(0, 120));
"""
# Number the visible controls, to find which ones Tab reaches.
NUMBERED = """
const seen = [...document.querySelectorAll('a[href], input, select, button, textarea')]
  .filter(e => e.offsetParent !== null && !e.disabled);
seen.forEach((e, i) => e.dataset.a11y = String(i));
return seen.length;
"""
# The lowest contrast between the text of an element and the background behind it.
CONTRAST = """
const rgb = s => s.match(/[\\d.]+/g).map(Number);
const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255;
  return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const behind = e => { for (; e; e = e.parentElement) {
  const c = rgb(getComputedStyle(e).backgroundColor);
  if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
let worst = [21, ''];
for (const e of document.querySelectorAll('body *')) {
  if (e.offsetParent === null) continue;
  if (![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  const a = lum(rgb(getComputedStyle(e).color)), b = lum(behind(e));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < worst[0]) worst = [ratio, e.outerHTML.slice(0, 80)];
}
return worst;
"""


@pytest.mark.parametrize("view", ["search", "explore"])
def test_every_control_is_labelled_reached_by_tab_and_legible(
    site: dict[str, Any], view: str
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser = site["browser"]
    browser.find_element("id", f"tab-{view}").click()
    assert browser.execute_script(UNLABELLED) == []
    count = browser.execute_script(NUMBERED)
    browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    reached = set()
    for _ in range(count + 5):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        reached.add(browser.switch_to.active_element.get_attribute("data-a11y"))
    missing = {str(i) for i in range(count)} - reached
    assert not missing, f"Tab never reaches controls {sorted(missing)}"
    ratio, where = browser.execute_script(CONTRAST)
    assert ratio >= 4.5, f"contrast {ratio:.2f} < 4.5 (WCAG AA) at {where}"
    browser.find_element("id", "tab-search").click()
