"""Sharded strategies, applied from outside the model (DESIGN habit 4): FSDP2 shards every
transformer `Block` and then the root; DeepSpeed ZeRO partitions optimiser state (stage 1),
gradients (2) and parameters (3).

Both save per-rank files with rank-unique names, so Ray Train can gather every worker's
part into one checkpoint folder, and both restore from that folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import Tensor, nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from weft.models.layers import Block
from weft.train.prepared import DDPPrepared, Prepared, TorchPrepared, adamw, lr_lambda, rank
from weft.train.spec import TrainSpec

# DeepSpeed picks its accelerator when it is imported; on CPU-only workers the trainer merges
# this into the workers' runtime env (`RunConfig(worker_runtime_env={"env_vars": ...})`).
DEEPSPEED_ENV = {"DS_ACCELERATOR": "cpu"}
DEEPSPEED_TAG = "deepspeed"  # the sub-folder of a checkpoint that holds the engine's files


class FSDPPrepared(TorchPrepared):
    """FSDP2 over all workers: each `Block` is one all-gathered unit, the root holds the rest
    (embeddings, norms, projections). With bf16, parameters are gathered and computed in
    bf16 and gradients reduced in fp32 (a GPU setting; CPU runs use fp32)."""

    def __init__(self, spec: TrainSpec, model: nn.Module) -> None:
        device = next(model.parameters()).device.type  # "cuda" on GPU workers, else "cpu"
        mesh = init_device_mesh(device, (dist.get_world_size(),))
        policy = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if spec.precision == "bf16"
            else MixedPrecisionPolicy()
        )
        # fully_shard cannot shard a 0-dim parameter (CLIP's logit scale): those stay whole on
        # every rank, as with DDP, their gradients averaged as they accumulate
        whole = {p for p in model.parameters() if p.dim() == 0}
        for block in [m for m in model.modules() if isinstance(m, Block)]:
            fully_shard(block, mesh=mesh, mp_policy=policy, ignored_params=whole)
        fully_shard(model, mesh=mesh, mp_policy=policy, ignored_params=whole)
        for param in whole:
            param.register_post_accumulate_grad_hook(_average_grad)
        super().__init__(spec, model, model)

    def _state(self) -> dict[str, Any]:
        """This rank's shards of the model and optimiser, the schedule and the step count."""
        model, optimizer = get_state_dict(self.module, self.optimizer)
        return {
            "model": model,
            "optimizer": optimizer,
            "scheduler": self.scheduler.state_dict(),
            "micro_steps": self.micro_steps,
        }

    def save(self, directory: Path) -> None:
        """torch.distributed.checkpoint: `__<rank>_0.distcp` per rank, `.metadata` from rank 0."""
        dcp.save(self._state(), checkpoint_id=directory)

    def load(self, directory: Path) -> None:
        state = self._state()
        try:
            dcp.load(state, checkpoint_id=directory)  # in place, resharded to this run's mesh
        except dcp.CheckpointException as err:  # a BaseException, raised on every rank
            causes = "; ".join(f"rank {r}: {exc}" for r, (exc, _) in err.failures.items())
            raise RuntimeError(f"torch.distributed.checkpoint cannot load it ({causes})") from None
        set_state_dict(
            self.module,
            self.optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
        )
        self.scheduler.load_state_dict(state["scheduler"])
        self.micro_steps = state["micro_steps"]

    def full_state_dict(self) -> dict[str, Tensor] | None:
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(self.module, options=options)  # empty off rank 0
        return cast(dict[str, Tensor], state) if rank() == 0 else None


def _average_grad(param: Tensor) -> None:
    """All-reduce a replicated parameter's gradient to its mean over the workers."""
    assert param.grad is not None  # set before a post-accumulate hook runs
    dist.all_reduce(param.grad)
    param.grad.div_(dist.get_world_size())


class DeepSpeedPrepared(Prepared):
    """DeepSpeed ZeRO over Ray Train's process group, with a torch AdamW and the shared
    LambdaLR (no compiled optimiser op). The engine does the accumulation: `step()` is called
    every micro-batch and steps the optimiser and schedule at the boundary."""

    def __init__(self, spec: TrainSpec, model: nn.Module) -> None:
        import deepspeed

        # DeepSpeed 0.19 cannot broadcast a 0-dim parameter (CLIP's logit scale) at start-up:
        # those train as shape (1,), and `full_state_dict` gives them back their own shape
        self.scalars = {name for name, p in model.named_parameters() if p.dim() == 0}
        for param in model.parameters():
            if param.dim() == 0:
                param.data = param.data.reshape(1)
        optimizer = adamw(model, spec.optim)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(spec.optim))
        self.engine, *_ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            lr_scheduler=scheduler,
            config=deepspeed_config(spec),
            dist_init_required=False,
        )
        self.model, self.module = model, self.engine
        super().__init__(spec)  # after the engine: it sets `micro_steps`, which is the engine's

    # DeepSpeed's bf16 casts the weights, not the inputs: autocast covers that, as for DDP.
    autocast = DDPPrepared.autocast

    @property
    def micro_steps(self) -> int:
        """The engine's own micro-batch count, which decides its accumulation boundary."""
        return int(self.engine.micro_steps)

    @micro_steps.setter
    def micro_steps(self, value: int) -> None:
        self.engine.micro_steps = value

    def backward(self, loss: Tensor) -> None:
        self.engine.backward(loss)  # scales by 1 / grad_accum itself

    def step(self) -> bool:
        self.engine.step()
        return self.boundary

    @property
    def lr(self) -> float:
        return float(self.engine.get_lr()[0])

    def save(self, directory: Path) -> None:
        """The engine's files under `deepspeed/`: model states from rank 0 (ZeRO-1/2) or every
        rank (ZeRO-3), and one optimiser partition per rank, each named by its rank."""
        self.engine.save_checkpoint(
            str(directory),
            tag=DEEPSPEED_TAG,
            client_state={"micro_steps": self.micro_steps},
            save_latest=False,
        )

    def load(self, directory: Path) -> None:
        _, client_state = self.engine.load_checkpoint(str(directory), tag=DEEPSPEED_TAG)
        self.micro_steps = client_state["micro_steps"]

    def full_state_dict(self) -> dict[str, Tensor] | None:
        """The fp32 master weights, all-gathered from the optimiser's partitions (a collective:
        every rank, every parameter, in the same order). Assumes every parameter trains: ZeRO
        keeps no fp32 copy of a frozen one."""
        from deepspeed.utils import safe_get_full_fp32_param

        fp32 = {name: safe_get_full_fp32_param(p) for name, p in self.model.named_parameters()}
        if rank() != 0:
            return None
        # buffers come from the module; its ZeRO-3 parameters are empty partitions
        state = {name: fp32.get(name, value) for name, value in self.model.state_dict().items()}
        return {
            name: (value.squeeze(0) if name in self.scalars else value).detach().cpu()
            for name, value in state.items()
        }


def deepspeed_config(spec: TrainSpec) -> dict[str, Any]:
    """The DeepSpeed config a spec implies; bf16 is for GPU workers."""
    optim = spec.optim
    return {
        "train_micro_batch_size_per_gpu": optim.batch_size,
        "gradient_accumulation_steps": optim.grad_accum,
        "gradient_clipping": optim.grad_clip,
        "zero_optimization": {"stage": spec.strategy.zero_stage},
        "bf16": {"enabled": spec.precision == "bf16"},
    }
