"""A seed's whole run is bitwise the same whatever seeds run beside it and on any device count.

Each device count runs in its own process (``JAX_NUM_CPU_DEVICES`` is fixed when jax starts): the
full default config (8 seeds, 32 updates) on 1, 2 and 4 host devices, and seed 3 alone (one run;
on 2 devices padded with one padding seed). Every metric curve, every parameter and optimiser
leaf, every env state and the greedy returns must be equal bit for bit. On CPU ``"auto"`` seed
batching is ``"map"``, which compiles one run once: see ``train.placement.resolve_seed_batching``.
"""

import os
import textwrap

import numpy as np
import pytest

from tests.conftest import run_python

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from train import PPOConfig, train

    result = train(PPOConfig(seeds=SEEDS))
    assert result.num_devices == len(jax.devices())
    arrays = {f"metrics/{k}": v for k, v in result.metrics.items()}
    arrays["eval_returns"] = result.eval_returns
    for path, leaf in jax.tree_util.tree_flatten_with_path(result.state)[0]:
        arrays["state" + jax.tree_util.keystr(path)] = np.asarray(leaf)
    np.savez(OUT, **arrays)
    print("SAVED", OUT, len(arrays))
    """
)


def _run(tmp_path, devices: int, seeds: tuple[int, ...]) -> dict[str, np.ndarray]:
    out = tmp_path / f"d{devices}_{len(seeds)}.npz"
    text = run_python(
        f"OUT, SEEDS = {str(out)!r}, {seeds!r}\n" + _SCRIPT,
        env={"JAX_NUM_CPU_DEVICES": str(devices), "PYTHONPATH": REPO, "XLA_FLAGS": ""},
        timeout=400,
    )
    assert "SAVED" in text, text
    with np.load(out) as data:
        return dict(data)


def _seed(arrays: dict[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    """One seed's slice: metrics/returns lead with [S], state leaves with [G, S]."""
    return {k: (v[:, index] if k.startswith("state") else v[index]) for k, v in arrays.items()}


def _assert_bitwise(a: dict[str, np.ndarray], b: dict[str, np.ndarray], what: str) -> None:
    assert a.keys() == b.keys(), what
    differ = [k for k in a if a[k].dtype != b[k].dtype or a[k].tobytes() != b[k].tobytes()]
    assert not differ, f"{what}: not bitwise equal: {differ}"


@pytest.mark.timeout(900)
def test_default_run__bitwise_on_1_2_4_devices_and_seed_alone_vs_among_eight(tmp_path):
    eight = tuple(range(8))
    one = _run(tmp_path, 1, eight)
    # The run really trained (a run that learns nothing would match trivially).
    assert np.all(one["eval_returns"] > 0.79), one["eval_returns"]
    assert not np.array_equal(one["metrics/policy_loss"][2], one["metrics/policy_loss"][3])
    _assert_bitwise(_run(tmp_path, 2, eight), one, "8 seeds on 2 devices vs 1")
    _assert_bitwise(_run(tmp_path, 4, eight), one, "8 seeds on 4 devices vs 1")
    among = _seed(one, 3)
    _assert_bitwise(_seed(_run(tmp_path, 1, (3,)), 0), among, "seed 3 alone vs among 8")
    _assert_bitwise(_seed(_run(tmp_path, 2, (3,)), 0), among, "seed 3 alone on 2 devices")

