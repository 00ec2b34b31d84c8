"""Every kind of model answers plain calls, with knobs that default to its config."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from weft.models import images, inference, registry
from weft.models.tokenizer import Tokenizer

CAPTIONS = ["a red circle", "a blue square", "a green triangle on white"] * 5


def saved(tmp_path: Path, name: str, **config: object) -> Path:
    torch.manual_seed(0)
    kind, cfg = registry.config(name)
    model = registry.KINDS[kind].build(cfg.model_copy(update=config))
    return registry.save(model, tmp_path / name, Tokenizer.train(CAPTIONS, vocab_size=280))


def png(colour: tuple[int, int, int], size: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_clip_embeds_texts_and_images_into_one_space_of_unit_vectors(tmp_path: Path) -> None:
    clip = inference.load(saved(tmp_path, "clip-tiny"))
    assert isinstance(clip, inference.Embedder)
    texts = clip.embed_texts(["a red circle", "a blue square"])
    pictures = clip.embed_images([png((255, 0, 0)), png((0, 0, 255)), png((0, 255, 0))])
    assert texts.shape == (2, clip.dim) and pictures.shape == (3, clip.dim)
    assert np.allclose(np.linalg.norm(pictures, axis=1), 1, atol=1e-5)
    raw = clip.embed_texts(["a red circle", "a blue square"], normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1, atol=1e-3)
    assert np.allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), texts, atol=1e-5)
    mixed = clip.predict_columns(
        {"text": ["a blue square", None], "image": [None, png((255, 0, 0))]}, {}
    )
    assert np.allclose(mixed["embedding"][0], texts[1], atol=1e-5)
    assert np.allclose(mixed["embedding"][1], pictures[0], atol=1e-5)
    with pytest.raises(ValueError, match="row 0: needs a text or an image"):
        clip.predict_columns({"text": [None], "image": [None]}, {})


def test_an_image_that_cannot_be_decoded_is_named(tmp_path: Path) -> None:
    clip = inference.load(saved(tmp_path, "clip-tiny"))
    assert isinstance(clip, inference.Embedder)
    with pytest.raises(images.ImageError, match="image 1: cannot be decoded"):
        clip.embed_images([png((1, 2, 3)), b"not an image"])


def test_the_captioner_beam_size_defaults_to_its_config(tmp_path: Path) -> None:
    writer = inference.load(saved(tmp_path, "captioner-tiny", beam_size=2))
    assert isinstance(writer, inference.CaptionWriter)
    assert writer.params == {"beam_size": 2}
    pictures = [png((255, 0, 0)), png((0, 0, 255))]
    captions = writer.caption(pictures)
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)
    assert writer.predict_columns({"image": pictures}, {}) == {"caption": captions}
    greedy = writer.predict_columns({"image": pictures}, {"beam_size": 1})["caption"]
    assert greedy == writer.caption(pictures, beam_size=1)
    with pytest.raises(ValueError, match=r"unknown parameter.*beams.*known: beam_size"):
        writer.predict_columns({"image": pictures}, {"beams": 2})


def test_the_captioner_scores_how_well_each_image_explains_a_text(tmp_path: Path) -> None:
    writer = inference.load(saved(tmp_path, "captioner-tiny"))
    assert isinstance(writer, inference.CaptionWriter)
    pictures = [png((255, 0, 0)), png((0, 0, 255)), png((0, 255, 0))]
    scores = writer.likelihood(pictures, "a red circle")
    assert scores.shape == (3,) and np.all(scores < 0)
    ids = writer.tokenizer.encode(["a red circle"] * 3, writer.config.text.context_length)
    size = writer.config.vision.image_size
    direct = writer.model.log_likelihood(images.batch(pictures, size), ids).numpy()
    assert np.allclose(scores, direct, atol=1e-5)


def test_generation_uses_the_models_defaults_the_seed_and_the_negative_prompt(
    tmp_path: Path,
) -> None:
    generation = {"cfg_scale": 2.0, "steps": 3, "negative_prompt": ""}
    path = saved(tmp_path, "diffusion-tiny")
    model, tokenizer = registry.load(path)
    cfg = model.config.model_copy(
        update={"generation": model.config.generation.model_copy(update=generation)}
    )  # type: ignore[union-attr]
    generator = inference.ImageGenerator(type(model)(cfg).eval(), tokenizer)
    generator.model.load_state_dict(model.state_dict())
    assert generator.params == {"cfg_scale": 2.0, "steps": 3, "seed": 0}
    first = generator.generate(["a red circle", "a blue square"], seed=1)
    assert first == generator.generate(["a red circle", "a blue square"], seed=1)
    assert first != generator.generate(["a red circle", "a blue square"], seed=2)
    size = cfg.unet.image_size
    assert Image.open(io.BytesIO(first[0])).size == (size, size)
    steered = generator.generate(["a red circle", "a blue square"], ["blue", None], seed=1)
    assert steered[0] != first[0]  # guided away from "blue" instead of from the null text
    assert steered[1] == first[1]  # no negative prompt: the null text, as before
    columns = {"prompt": ["a red circle"], "negative_prompt": [None]}
    assert generator.predict_columns(columns, {"seed": 1})["image"] == first[:1]


def test_every_kind_describes_its_columns_and_answers_its_example(tmp_path: Path) -> None:
    for name in ("clip-tiny", "captioner-tiny", "diffusion-tiny", "inspector-tiny"):
        predictor = inference.load(saved(tmp_path, name))
        example = predictor.example()
        assert set(example) <= {column for column, _ in predictor.inputs}
        params = dict(predictor.params)
        if "steps" in params:
            params["steps"] = 2
        answer = predictor.predict_columns(example, params)
        assert list(answer) == [column for column, _ in predictor.outputs]
        assert len(next(iter(answer.values()))) == len(next(iter(example.values())))


def test_with_generation_changes_the_defaults_and_shares_the_weights(tmp_path: Path) -> None:
    generator = inference.load(saved(tmp_path, "diffusion-tiny"))
    assert isinstance(generator, inference.ImageGenerator)
    tuned = generator.with_generation(cfg_scale=6.5, steps=2)
    assert tuned.params == {"cfg_scale": 6.5, "steps": 2, "seed": 0}
    assert generator.params["cfg_scale"] == 3.0  # the original keeps its own
    assert tuned.generate(["a red circle"]) == generator.generate(
        ["a red circle"], cfg_scale=6.5, steps=2
    )
    assert next(tuned.model.parameters()) is next(generator.model.parameters())
    with pytest.raises(ValueError, match="steps"):
        generator.with_generation(steps=0)


def test_image_features_are_the_encoders_cls_features(tmp_path: Path) -> None:
    clip = inference.load(saved(tmp_path, "clip-tiny"))
    assert isinstance(clip, inference.Embedder)
    features = clip.image_features([png((255, 0, 0)), png((0, 0, 255))])
    assert features.shape == (2, clip.model.config.vision.width)
    assert not np.allclose(features[0], features[1])


def test_a_captioned_grid_writes_each_caption_under_its_image() -> None:
    grid = images.captioned_grid([png((255, 0, 0))] * 5, ["red"] * 4 + ["a much longer caption"])
    width, height = grid.size
    assert width == 4 * 128 and height > 2 * 128  # two rows, each with room for its text
    pixels = np.asarray(grid)
    assert (pixels[:128, :128] == [255, 0, 0]).all()  # the image, scaled to its cell
    assert (pixels[130:140, :128] < 128).any()  # dark text on white under it
