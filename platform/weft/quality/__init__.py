"""Weft's quality bars: `weft eval`'s figures on held-out emoji data, and gold-set retrieval."""
