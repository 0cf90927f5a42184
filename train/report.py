"""Statistics over seeds (rliable-style) and the printed seed table.

One lucky seed is never the headline: every config is summarised by mean ± std, median, the
interquartile mean (IQM, the mean of the middle 50% of runs) with a 95% stratified-bootstrap
confidence interval, and its per-seed final values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def trim_mean(values: np.ndarray, proportion: float, axis: int = -1) -> np.ndarray:
    """Mean of ``values`` along ``axis`` with ``int(proportion * n)`` values cut from each end.

    The same arithmetic as ``scipy.stats.trim_mean`` (partition, then the mean of the middle),
    so results are bitwise equal (tests/train/test_report.py). Written here, not imported: every
    ``jaxgrid-train`` prints this table, and ``import scipy.stats`` costs 0.85 s of CPU more than
    numpy alone (``farm-bench``, median of 5, 2026-11-29, loaded machine), against a target of 4 s
    for a whole warm run (issue 12).

    Raises:
        ValueError: ``proportion`` cuts more than all the values.
    """
    values = np.moveaxis(np.asarray(values), axis, -1)
    n = values.shape[-1]
    lo = int(proportion * n)
    hi = n - lo
    if lo > hi:
        raise ValueError(f"proportion={proportion} is too big: it cuts more than all {n} values")
    return np.mean(np.partition(values, (lo, hi - 1), axis=-1)[..., lo:hi], axis=-1)


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all values (25% trimmed from each end, as rliable defines it)."""
    return float(trim_mean(np.asarray(scores, np.float64).reshape(-1), 0.25))


def stratified_bootstrap_ci(
    scores: np.ndarray,
    statistic=None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile confidence interval of ``statistic`` by stratified bootstrap.

    ``scores`` is ``[num_runs]`` or ``[num_tasks, num_runs]``: runs are resampled with replacement
    within each task (stratum) independently, as in rliable. With one task this is the ordinary
    bootstrap over seeds. ``statistic`` maps ``[tasks, runs]`` to a float (default: IQM).
    """
    scores = np.asarray(scores, np.float64)
    if scores.ndim == 1:
        scores = scores[None]
    rng = np.random.default_rng(seed)
    num_tasks, num_runs = scores.shape
    idx = rng.integers(0, num_runs, size=(n_resamples, num_tasks, num_runs))
    resampled = np.take_along_axis(scores[None], idx, axis=2)  # [R, tasks, runs]
    if statistic is None:  # vectorised IQM over the pooled runs of each resample
        values = trim_mean(resampled.reshape(n_resamples, -1), 0.25, axis=1)
    else:
        values = np.array([statistic(r) for r in resampled])
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


@dataclass(frozen=True)
class SeedSummary:
    """Summary of one config's final scores over seeds."""

    label: str
    seeds: tuple[int, ...]
    finals: np.ndarray  # [num_seeds] one final score per seed
    mean: float
    std: float  # sample std (ddof=1; 0 for a single seed)
    median: float
    iqm: float
    iqm_ci: tuple[float, float]  # 95% stratified-bootstrap CI of the IQM


def summarize(
    finals: np.ndarray, seeds: tuple[int, ...], label: str = "", confidence: float = 0.95
) -> SeedSummary:
    """Summarises per-seed final scores ``[num_seeds]``."""
    finals = np.asarray(finals, np.float64).reshape(-1)
    if len(finals) != len(seeds):
        raise ValueError(f"got {len(finals)} finals for {len(seeds)} seeds")
    return SeedSummary(
        label=label,
        seeds=tuple(seeds),
        finals=finals,
        mean=float(finals.mean()),
        std=float(finals.std(ddof=1)) if len(finals) > 1 else 0.0,
        median=float(np.median(finals)),
        iqm=iqm(finals),
        iqm_ci=stratified_bootstrap_ci(finals, confidence=confidence),
    )


def summarize_result(result: Any) -> list[SeedSummary]:
    """One ``SeedSummary`` of greedy evaluation returns per config (sweep point) of a result."""
    config = result.config
    finals = np.asarray(result.eval_returns).reshape(config.num_grid_points, config.num_seeds)
    summaries = []
    for point, row in zip(config.grid_points(), finals):
        label = ", ".join(f"{k}={v:g}" for k, v in point.items()) or config.env_id
        summaries.append(summarize(row, config.seeds, label))
    return summaries


def format_table(
    summaries: list[SeedSummary], title: str = "greedy return over seeds", optimum: float | None = None
) -> str:
    """A plain-text table: one row per config, then its per-seed finals. With ``optimum`` (the
    env's exact optimal return, ``jaxgrid.optimal_return``), a column gives the IQM as a fraction
    of it (``fraction_of_optimum``: ``optimum / score`` for a negative optimum)."""
    width = max([32] + [len(s.label) for s in summaries])  # whole labels: sweep points must differ
    header = f"{'config':<{width}} {'mean ± std':>17} {'median':>8} {'IQM [95% CI]':>26}  n"
    if optimum is not None:
        header += f"  {'IQM / optimum':>13}"
    lines = [title + ("" if optimum is None else f" (optimum {optimum:.4g})"), header, "-" * len(header)]
    for s in summaries:
        ci = f"{s.iqm:.3f} [{s.iqm_ci[0]:.3f}, {s.iqm_ci[1]:.3f}]"
        row = (
            f"{s.label:<{width}} {s.mean:>8.3f} ± {s.std:<6.3f} {s.median:>8.3f} {ci:>26}  "
            f"{len(s.finals)}"
        )
        if optimum is not None:
            row += f"  {fraction_of_optimum(s.iqm, optimum):>13.3f}"
        lines.append(row)
        per_seed = "  ".join(f"{seed}:{v:.3f}" for seed, v in zip(s.seeds, s.finals))
        lines.append(f"    per seed  {per_seed}")
    return "\n".join(lines)


def fraction_of_optimum(score: float | np.ndarray, optimum: float) -> float | np.ndarray:
    """``score`` as a fraction of the env's optimum: ``score / optimum`` for a positive optimum,
    ``optimum / score`` for a negative one (1 at the optimum, smaller the more is lost; 0 for a
    score >= 0, which cannot occur), NaN for an optimum of 0 (no scale to compare with)."""
    score = np.asarray(score, np.float64)
    if optimum > 0:
        out = score / optimum
    elif optimum < 0:
        safe = np.where(score < 0, score, -1.0)
        out = np.where(score < 0, optimum / safe, 0.0)
    else:
        out = np.full(score.shape, np.nan)
    return float(out) if out.ndim == 0 else out
