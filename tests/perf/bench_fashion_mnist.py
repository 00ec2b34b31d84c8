"""Quality check of the model library on real images: Fashion-MNIST (70,000 photographs of
clothes in 10 classes, 28x28 grey) from the Debian package `dataset-fashion-mnist`.

1. A small ViT classifier trained from scratch on CPU: test accuracy and samples/s.
2. CLIP trained on the same images with captions made from the labels ("a photo of an
   ankle boot"): zero-shot top-1/top-5 accuracy on the test set from class-name prompts,
   and recall@K between 1,000 test images and their captions.

Figures, never assertions:

    python -m tests.perf.bench_fashion_mnist [--epochs 3] [--clip-epochs 2]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from weft.models.clip import (
    CLIP,
    CLIPConfig,
    contrastive_loss,
    zero_shot_classifier,
    zero_shot_logits,
)
from weft.models.metrics import retrieval_metrics, topk_accuracy
from weft.models.text import TextConfig
from weft.models.tokenizer import Tokenizer
from weft.models.vit import ViTClassifier
from weft.quality.fashion import CLASSES, VISION, fit, in_batches, load

TEMPLATES = ["a photo of {}.", "a picture of {}.", "a black and white photo of {}."]
console = Console()


def article(name: str) -> str:
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--clip-epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    figures = Table(title=f"Fashion-MNIST on {args.threads} CPU threads")
    for col in ("model", "figure", "value"):
        figures.add_column(col, justify="right" if col == "value" else "left")

    classifier = ViTClassifier(VISION, classes=len(CLASSES))
    rate = fit(
        list(classifier.parameters()),
        lambda i: F.cross_entropy(classifier(train_x[i]), train_y[i]),
        len(train_x),
        args.epochs,
        batch=128,
        lr=2e-3,
    )
    classifier.eval()
    logits = in_batches(classifier, test_x)
    figures.add_row(
        "ViT classifier", "parameters", f"{sum(p.numel() for p in classifier.parameters()):,}"
    )
    figures.add_row("", f"train samples/s ({args.epochs} epochs)", f"{rate:,.0f}")
    figures.add_row("", "test top-1 accuracy", f"{topk_accuracy(logits, test_y, 1):.3f}")

    names = [article(c) for c in CLASSES]
    captions = [
        TEMPLATES[i % len(TEMPLATES)].format(names[y]) for i, y in enumerate(train_y.tolist())
    ]
    tokenizer = Tokenizer.train(captions, vocab_size=400)
    text = TextConfig(
        vocab_size=tokenizer.vocab_size, context_length=16, width=96, depth=2, heads=4
    )
    clip = CLIP(CLIPConfig(vision=VISION, text=text, embed_dim=64))
    ids = tokenizer.encode(captions, text.context_length)
    rate = fit(
        list(clip.parameters()),
        lambda i: contrastive_loss(*clip(train_x[i], ids[i])),
        len(train_x),
        args.clip_epochs,
        batch=256,
        lr=1e-3,
        after_step=clip.clamp_temperature,
    )
    clip.eval()
    zero_shot = zero_shot_classifier(clip, tokenizer, names, TEMPLATES)
    logits = in_batches(lambda x: zero_shot_logits(clip, x, zero_shot), test_x)
    test_captions = [TEMPLATES[0].format(names[y]) for y in test_y[:1000].tolist()]
    with torch.no_grad():
        retrieval = retrieval_metrics(
            clip.encode_image(test_x[:1000]),
            clip.encode_text(tokenizer.encode(test_captions, text.context_length)),
        )
    figures.add_row("CLIP", f"train samples/s ({args.clip_epochs} epochs)", f"{rate:,.0f}")
    figures.add_row("", "learned temperature", f"{clip.temperature:.4f}")
    figures.add_row("", "zero-shot top-1 accuracy", f"{topk_accuracy(logits, test_y, 1):.3f}")
    figures.add_row("", "zero-shot top-5 accuracy", f"{topk_accuracy(logits, test_y, 5):.3f}")
    for key, value in retrieval.items():
        figures.add_row("", f"{key} (1,000 test pairs)", f"{value:.3f}")
    console.print(figures)
    console.print(
        "The 1,000 test captions are 10 distinct texts (one per class) and ties count in the "
        "match's favour, so image-to-text recall@K is class retrieval; text-to-image recall@K "
        "is at most about K/100, since about 100 images share each caption."
    )


if __name__ == "__main__":
    main()
