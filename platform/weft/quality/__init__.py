"""Weft's quality bars: `weft eval`'s figures on held-out emoji data, gold-set retrieval, and
`weft quality`'s flow (`flow`), which makes every figure of the tables from nothing."""
