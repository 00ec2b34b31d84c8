"""How a model is spread over the data-parallel workers, applied from outside the model:
DDP (`prepared.py`), FSDP2 and DeepSpeed ZeRO (`sharded.py`), each a `Prepared`."""

from __future__ import annotations

from torch import nn

from weft.train.prepared import DDPPrepared, Prepared
from weft.train.sharded import DeepSpeedPrepared, FSDPPrepared
from weft.train.spec import TrainSpec


def prepare(model: nn.Module, spec: TrainSpec) -> Prepared:
    """Wrap `model` (already on the worker's device) as the spec's strategy says."""
    if spec.strategy.name == "ddp":
        return DDPPrepared(spec, model)
    if spec.strategy.name == "fsdp":
        return FSDPPrepared(spec, model)
    return DeepSpeedPrepared(spec, model)
