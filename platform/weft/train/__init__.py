"""Pretraining on Ray Train: curated Parquet streamed by Ray Data into DDP / FSDP / DeepSpeed."""
