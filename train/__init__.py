"""jaxgrid's PPO trainer: one jitted, vmapped XLA program trains many seeds and sweep points.

    from train import PPOConfig, train
    result = train(PPOConfig(env_id="GridWorld-4x4-v0", seeds=(0, 1, 2, 3)))

Imports are lazy so that ``train.cli`` can configure jax's devices before jax is imported.
Importing ``train`` adds the XLA:CPU flags of ``train.xla_flags`` to ``XLA_FLAGS`` (a schedule
option that keeps this trainer's programs from running 4-7x slower on some calls on a 2-core CPU;
results are bitwise the same), unless ``XLA_FLAGS`` already names them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from train.xla_flags import configure_xla_cpu

configure_xla_cpu()

if TYPE_CHECKING:
    from train.config import PPOConfig
    from train.trainer import TrainResult, train

__all__ = ["PPOConfig", "TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name == "PPOConfig":
        from train.config import PPOConfig

        return PPOConfig
    if name in ("train", "TrainResult"):
        from train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'train' has no attribute {name!r}")
