"""PPOConfig: the trainer's hyperparameters, validated on construction, and sweep grids."""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np


def traced(default: float, rule: str, check: Callable[[float], bool]) -> Any:
    """Declares a traced (sweepable) hyperparameter: a float32 input of the fused program, so
    configs differing only in its value share one compiled program and a ``sweep`` can vmap it.

    ``check(value)`` is its validation (also applied to every value of a sweep) and ``rule`` the
    message naming the valid range. Every other field is static: it fixes array shapes or the
    program's structure (``SHAPE_CHANGING``). The field's docstring follows it as usual.
    """
    return field(default=default, metadata={"traced": True, "rule": rule, "check": check})


def _fail(name: str, value: Any, rule: str) -> None:
    raise ValueError(f"PPOConfig.{name}={value!r} is invalid: {rule}")


def _is_int(value: Any) -> bool:
    """A true integer (Python or NumPy), not a bool, not a float."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    """A real number (Python or NumPy int/float), not a bool, not a string."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _int_tuple(name: str, value: Any, example: str) -> tuple[int, ...]:
    """``value`` (a list, tuple, range or 1-D array of ints) as a tuple of Python ints."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (tuple, list, range)):
        _fail(name, value, f"must be a tuple of ints, e.g. {example}")
    bad = [v for v in value if not _is_int(v)]
    if bad:
        _fail(name, tuple(value), f"must be a tuple of ints, e.g. {example}; {bad[0]!r} is not an int")
    return tuple(int(v) for v in value)


def _sweep_grid(sweep: Any) -> dict[str, tuple[float, ...]]:
    """``sweep`` (a dict of name -> sequence of numbers) as ``{name: tuple of floats}``."""
    form = 'a dict {name: (value, ...)}, e.g. {"learning_rate": (1e-3, 3e-4)} ({} for no sweep)'
    if not isinstance(sweep, Mapping):
        _fail("sweep", sweep, f"must be {form}")
    out = {}
    for key, vals in sweep.items():
        if not isinstance(key, str):
            _fail("sweep", key, f"keys must be hyperparameter names (str); sweepable keys: {', '.join(SWEEPABLE)}")
        if isinstance(vals, np.ndarray) and vals.ndim == 1:
            vals = vals.tolist()
        if not isinstance(vals, (tuple, list)):
            _fail(f"sweep[{key!r}]", vals, f"must be a tuple of numbers; sweep is {form}")
        bad = [v for v in vals if not _is_real(v)]
        if bad:
            _fail(f"sweep[{key!r}]", tuple(vals), f"must be a tuple of numbers; {bad[0]!r} is not a number")
        out[key] = tuple(float(v) for v in vals)
    return out


@dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of one PPO run (every seed and every sweep point of it)."""

    env_id: str = "GridWorld-4x4-v0"
    """Environment id: a jaxgrid id (``jaxgrid.registered_ids()``) or a gymnax id (e.g. CartPole-v1)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env overrides: keyword arguments of ``jaxgrid.make``, or gymnax ``EnvParams`` fields."""
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)
    """Seeds to train side by side; seed k starts from ``jax.random.PRNGKey(k)``."""
    total_timesteps: int = 16_384
    """Env steps per seed (summed over the parallel envs); rounded down to whole updates."""
    num_envs: int = 16
    """Parallel envs per seed (vmapped)."""
    num_steps: int = 32
    """Rollout length per env per update; the batch is ``num_envs * num_steps`` transitions."""
    update_epochs: int = 4
    """Passes over each rollout batch per update."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide ``num_envs * num_steps``."""
    learning_rate: float = traced(2.5e-3, "must be > 0", lambda v: v > 0)
    """Adam step size (the start value when ``anneal_lr``)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0, counted in updates."""
    gamma: float = traced(0.99, "must be in (0, 1]", lambda v: 0 < v <= 1)
    """Discount factor γ, in (0, 1]."""
    gae_lambda: float = traced(0.95, "must be in [0, 1]", lambda v: 0 <= v <= 1)
    """GAE λ, in [0, 1]."""
    clip_eps: float = traced(0.2, "must be > 0", lambda v: v > 0)
    """PPO ratio clip ε (also the value-clip range when ``clip_value_loss``)."""
    ent_coef: float = traced(0.01, "must be >= 0", lambda v: v >= 0)
    """Entropy bonus coefficient."""
    vf_coef: float = traced(0.5, "must be >= 0", lambda v: v >= 0)
    """Value loss coefficient."""
    max_grad_norm: float = traced(0.5, "must be > 0", lambda v: v > 0)
    """Global-norm gradient clip."""
    clip_value_loss: bool = False
    """Clip the value loss around the rollout's values (CleanRL/PureJaxRL style)."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of the hidden layers of each tower (actor and critic)."""
    rnn_hidden_size: int = 0
    """Policy kind (static: it fixes the network's shapes). ``0``: the feedforward actor-critic.
    ``> 0``: a recurrent policy, encoder -> GRU of this many units (shared by actor and critic)
    -> the two towers (``train.recurrent``): the hidden state is carried through the rollout (in
    the runner state, so chunked calls, checkpoints and resume carry it), reset where an episode
    starts and stored per step; minibatches are whole env sequences (``num_envs /
    num_minibatches`` envs' whole rollouts) and the loss back-propagates through the whole rollout
    (``num_steps`` steps). Needs ``num_minibatches`` to divide ``num_envs``; ``obs_table`` is not
    used (``"on"`` is refused)."""
    bptt_length: int | None = None
    """Truncated BPTT for the recurrent policy (``rnn_hidden_size > 0``; static: it fixes the
    loss's shapes). Each env's rollout is cut into sequences of this many steps; the loss re-runs
    the GRU over each from the hidden state the rollout stored at its first step ("stored state",
    Kapturowski et al., R2D2, ICLR 2019; rl-games' ``seq_length``), so gradients flow back at most
    this many steps, and minibatches are shuffled sequences, not whole env rollouts. The loss's
    sequential scan is ``num_steps / bptt_length`` times shorter over as many times more
    sequences: what makes the recurrent update fast (``bench/memory.py``'s throughput).
    ``None``: ``num_steps`` (BPTT through the whole rollout). Must divide ``num_steps``, and
    ``num_minibatches`` must divide the sequence count ``num_steps / bptt_length * num_envs``."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Hidden-layer activation."""
    encoder: Literal["auto", "dense", "embed", "cnn"] = "auto"
    """Encoder of image observations (a ``Box`` of rank 3, ``[H, W, C]``: jaxgrid's ``grid`` and
    ``view``; static: it fixes the network's shapes). ``"dense"``: the flattened image straight
    into the towers' first layer; ``"embed"``: each cell's channel flags read as a cell-kind code,
    an 8-wide learned embedding per code, flattened into the towers; ``"cnn"``: two 3x3
    convolutions (16, 32 channels, ReLU) shared by both towers; ``"auto"``
    (``train.setup.resolve_encoder``): ``"dense"``, the fastest on CPU and GPU for small grids
    (``bench/encoders.py``). Other observations (``Discrete``, vectors) are one-hot encoded or used
    as they are whatever the value, so ``"embed"`` and ``"cnn"`` are refused for them, and with
    ``rnn_hidden_size > 0`` (the GRU reads the flattened image)."""
    num_eval_envs: int = 16
    """Greedy episodes per seed of the in-program evaluation (``TrainResult.eval_returns``, and
    ``run_until``'s check after every update); the floor of ``eval_episodes``' automatic choice."""
    eval_episodes: int | None = None
    """Episodes per seed of the final evaluation (``train.evaluate``: greedy and stochastic policy,
    success rate, fraction of the optimum; what ``jaxgrid-train`` reports after training).
    ``None``: ``num_eval_envs`` on a deterministic env (``jaxgrid.is_deterministic``: a greedy
    policy replays one episode), else ``max(num_eval_envs, 1068)``, enough that the 95% CI of a
    seed's success rate is within ±0.03 (``1.96 * sqrt(0.25 / 1068) <= 0.03``)."""
    eval_max_steps: int | None = None
    """Step cap of an evaluation episode. ``None``: the env's own time limit, or 1000 steps when it
    has none (longer than 100,000 steps: CliffWalking's ``2**31 - 1``). An episode the cap cuts
    counts with its return so far and as not successful."""
    sweep: dict[str, tuple[float, ...]] = field(default_factory=dict)
    """Grid of traced hyperparameters trained in one program, e.g.
    ``{"learning_rate": (1e-3, 3e-4), "ent_coef": (0.0, 0.01)}`` (on the command line:
    ``--sweep learning_rate 1e-3 3e-4 ent_coef 0 0.01``); keys from ``SWEEPABLE``."""
    seed_batching: Literal["auto", "vmap", "map"] = "auto"
    """How the fused program batches seeds and sweep points: ``"map"`` (``lax.map``: one run
    compiled once and run after another, each device over its own seeds; a run is then bitwise
    the same whatever runs beside it and on any device count), ``"vmap"`` (one batched program:
    what fills a GPU/TPU; XLA may compile it differently per batch size, so results agree with
    ``"map"`` and across batch sizes within float rounding only), or ``"auto"``
    (``train.placement.resolve_seed_batching``: ``"map"`` on CPU, ``"vmap"`` elsewhere)."""
    seed_map_batch_size: int = 1
    """With ``"map"``: runs vmapped together in each ``lax.map`` step (1: fully sequential, and
    the only size whose results do not depend on the runs beside)."""
    obs_table: Literal["auto", "on", "off"] = "auto"
    """For a ``Discrete(n)`` observation space: evaluate the network once on all ``n``
    observations and look rows up, instead of once per sample (``train.setup.TrainSetup``). The same
    function, so the same training up to float summation order (gradients are summed per
    observation first); much less arithmetic when ``n`` is smaller than a minibatch. ``"auto"``:
    on when ``n <= minibatch_size``; ``"on"`` needs a Discrete observation space; ``"off"``."""

    def __post_init__(self) -> None:
        # Normalise sequence fields given as lists (e.g. from a CLI) into tuples, refusing what is
        # not exactly of the documented form (no silent int() of 1.5, True or a string).
        object.__setattr__(self, "seeds", _int_tuple("seeds", self.seeds, "(0, 1, 2)"))
        object.__setattr__(self, "hidden_sizes", _int_tuple("hidden_sizes", self.hidden_sizes, "(64, 64)"))
        if not isinstance(self.env_kwargs, Mapping) or not all(isinstance(k, str) for k in self.env_kwargs):
            _fail("env_kwargs", self.env_kwargs, "must be a dict of keyword arguments {name: value} ({} for none)")
        object.__setattr__(self, "env_kwargs", dict(self.env_kwargs))
        object.__setattr__(self, "sweep", _sweep_grid(self.sweep))
        self._validate()

    # ---------------------------------------------------------------------------- validation
    def _validate(self) -> None:
        for name in ("num_envs", "num_steps", "update_epochs", "num_minibatches",
                     "total_timesteps", "num_eval_envs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                _fail(name, value, "must be a positive int")
        for name in ("eval_episodes", "eval_max_steps"):  # None: chosen per env (see the field docs)
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                _fail(name, value, "must be a positive int or None (chosen per env)")
        if not self.seeds:
            _fail("seeds", self.seeds, "must hold at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            _fail("seeds", self.seeds, "must not repeat a seed")
        if any(s < 0 or s >= 2**32 for s in self.seeds):
            _fail("seeds", self.seeds, "every seed must be in [0, 2**32)")
        if self.batch_size % self.num_minibatches:
            _fail(
                "num_minibatches",
                self.num_minibatches,
                f"must divide num_envs * num_steps = {self.batch_size}",
            )
        if self.total_timesteps < self.batch_size:
            _fail(
                "total_timesteps",
                self.total_timesteps,
                f"must be at least num_envs * num_steps = {self.batch_size} (one update)",
            )
        if self.seed_batching not in ("auto", "vmap", "map"):
            _fail("seed_batching", self.seed_batching, "must be one of 'auto', 'vmap', 'map'")
        if self.obs_table not in ("auto", "on", "off"):
            _fail("obs_table", self.obs_table, "must be one of 'auto', 'on', 'off'")
        value = self.seed_map_batch_size
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            _fail("seed_map_batch_size", value, "must be a positive int")
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            _fail("hidden_sizes", self.hidden_sizes, "must be a non-empty tuple of positive ints")
        if self.activation not in ("tanh", "relu"):
            _fail("activation", self.activation, "must be one of 'tanh', 'relu'")
        if self.encoder not in ("auto", "dense", "embed", "cnn"):
            _fail("encoder", self.encoder, "must be one of 'auto', 'dense', 'embed', 'cnn'")
        self._validate_rnn()
        self._validate_hparams(self.__dict__, where="")
        self._validate_sweep()
        from train.envs import is_known_env_id, known_env_ids

        if not is_known_env_id(self.env_id):
            close = difflib.get_close_matches(str(self.env_id), list(known_env_ids()), n=3, cutoff=0.4)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            _fail("env_id", self.env_id, f"must be a known env id{hint}; valid choices: {', '.join(known_env_ids())}")
        self._validate_env_kwargs()

    def _validate_env_kwargs(self) -> None:
        """Checks the overrides on the host, before anything is compiled or written: jaxgrid ids by
        ``jaxgrid.check_make`` (names, types, scalar shape, finiteness, ranges), gymnax ids by
        name and as finite real scalars or bools."""
        from train.envs import jaxgrid_ids, make_env

        try:
            if self.env_id in jaxgrid_ids():
                import jaxgrid

                jaxgrid.check_make(self.env_id, **self.env_kwargs)
                return
            for key, value in self.env_kwargs.items():
                ok = isinstance(value, (bool, np.bool_)) or (_is_real(value) and math.isfinite(value))
                if not ok:
                    _fail(f"env_kwargs[{key!r}]", value, "must be a finite number or a bool (a gymnax EnvParams field)")
            if self.env_kwargs:
                make_env(self.env_id, self.env_kwargs)
        except (ValueError, TypeError) as err:
            if str(err).startswith("PPOConfig."):
                raise
            _fail("env_kwargs", self.env_kwargs, f"{self.env_id}: {err}")

    def _validate_rnn(self) -> None:
        value = self.rnn_hidden_size
        if isinstance(value, bool) or not _is_int(value) or value < 0:
            _fail("rnn_hidden_size", value, "must be an int >= 0 (0: feedforward policy, > 0: GRU units)")
        length = self.bptt_length
        if length is not None and (isinstance(length, bool) or not _is_int(length) or length < 1):
            _fail("bptt_length", length, "must be an int >= 1 steps, or None (num_steps: the whole rollout)")
        if value == 0:
            if length is not None:
                _fail("bptt_length", length, "truncated BPTT is for the recurrent policy only: set "
                      "rnn_hidden_size > 0, or leave bptt_length None")
            return
        if length is not None and self.num_steps % length:
            _fail("bptt_length", length, f"must divide num_steps = {self.num_steps}")
        if length is None and self.num_envs % self.num_minibatches:
            _fail(
                "num_minibatches",
                self.num_minibatches,
                f"with rnn_hidden_size > 0 minibatches are whole env sequences, so num_minibatches "
                f"must divide num_envs = {self.num_envs}",
            )
        if length is not None and self.num_sequences % self.num_minibatches:
            _fail(
                "num_minibatches",
                self.num_minibatches,
                f"with rnn_hidden_size > 0 minibatches are env sequences of bptt_length steps, so "
                f"num_minibatches must divide their count num_steps / bptt_length * num_envs = "
                f"{self.num_steps} / {length} * {self.num_envs} = {self.num_sequences}",
            )
        if self.encoder in ("embed", "cnn"):
            _fail(
                "encoder",
                self.encoder,
                "the recurrent policy reads images flattened into its GRU; valid choices with "
                "rnn_hidden_size > 0: 'auto', 'dense'",
            )
        if self.obs_table == "on":
            _fail(
                "obs_table",
                self.obs_table,
                "the observation table is for feedforward policies only (a recurrent policy's "
                "output depends on the history, not on the observation alone); valid choices "
                "with rnn_hidden_size > 0: 'auto', 'off'",
            )

    @staticmethod
    def _validate_hparams(values: dict[str, Any], where: str) -> None:
        for f in _TRACED_FIELDS:
            name, ok, rule = f.name, f.metadata["check"], f.metadata["rule"]
            if name not in values:
                continue
            for v in values[name] if where else (values[name],):
                if not (isinstance(v, (int, float)) and not isinstance(v, bool)) or not math.isfinite(v) or not ok(v):
                    _fail(f"{name}" + where, v, rule)

    def _validate_sweep(self) -> None:
        for key, vals in self.sweep.items():
            if key in SHAPE_CHANGING:
                _fail(
                    "sweep",
                    key,
                    f"{key!r} changes array shapes or program structure and cannot be swept in "
                    f"one program; sweepable keys: {', '.join(SWEEPABLE)}",
                )
            if key not in SWEEPABLE:
                _fail("sweep", key, f"unknown key; sweepable keys: {', '.join(SWEEPABLE)}")
            if not vals:
                _fail("sweep", key, "needs at least one value")
        self._validate_hparams(self.sweep, where=" (in sweep)")

    # ---------------------------------------------------------------------------- derived values
    @property
    def batch_size(self) -> int:
        """Transitions per update: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        """Transitions per minibatch."""
        return self.batch_size // self.num_minibatches

    @property
    def sequence_length(self) -> int:
        """Steps per BPTT sequence of the recurrent policy: ``bptt_length``, or ``num_steps``."""
        return self.bptt_length or self.num_steps

    @property
    def num_sequences(self) -> int:
        """BPTT sequences per update of the recurrent policy:
        ``num_steps / sequence_length * num_envs``."""
        return self.num_steps // self.sequence_length * self.num_envs

    @property
    def num_updates(self) -> int:
        """PPO updates per seed: ``total_timesteps // batch_size``."""
        return self.total_timesteps // self.batch_size

    @property
    def env_steps_per_seed(self) -> int:
        """Env steps each seed actually takes in training (whole updates only)."""
        return self.num_updates * self.batch_size

    @property
    def num_seeds(self) -> int:
        """Number of seeds."""
        return len(self.seeds)

    @property
    def sweep_keys(self) -> tuple[str, ...]:
        """The swept hyperparameter names, in grid-axis order."""
        return tuple(self.sweep)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Shape of the sweep grid (``()`` without a sweep)."""
        return tuple(len(v) for v in self.sweep.values())

    @property
    def num_grid_points(self) -> int:
        """Number of hyperparameter settings trained (1 without a sweep)."""
        return math.prod(self.grid_shape)

    def grid_points(self) -> list[dict[str, float]]:
        """Every hyperparameter setting of the grid, row-major, as ``{name: value}`` overrides."""
        keys = self.sweep_keys
        return [dict(zip(keys, combo)) for combo in itertools.product(*self.sweep.values())]

    def hparam_values(self) -> dict[str, list[float]]:
        """For each sweepable hyperparameter, its value at every grid point (row-major)."""
        points = self.grid_points()
        return {k: [float(p.get(k, getattr(self, k))) for p in points] for k in SWEEPABLE}

    def replace(self, **changes: Any) -> "PPOConfig":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


_TRACED_FIELDS = tuple(f for f in dataclasses.fields(PPOConfig) if f.metadata.get("traced"))
# Hyperparameters that are traced values inside the fused program, so a sweep can vmap them.
SWEEPABLE: tuple[str, ...] = tuple(f.name for f in _TRACED_FIELDS)
# Settings that change array shapes or the program's structure: they cannot be vmapped.
SHAPE_CHANGING: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(PPOConfig) if f.name not in SWEEPABLE
)
