"""Weft: curate, pretrain, sweep and serve multimodal models on Ray."""
