"""Seed statistics: IQM and its stratified-bootstrap confidence interval, and the table."""

import numpy as np
import pytest
from scipy import stats

from train import report


def test_iqm_trims_a_quarter_each_side():
    # sorted: 0 1 2 3 4 5 6 100 -> drop 2 each side -> mean(2, 3, 4, 5) = 3.5
    assert report.iqm(np.array([5, 0, 100, 3, 1, 6, 2, 4])) == pytest.approx(3.5)


def test_bootstrap_ci_matches_scipy_for_one_task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=16)
    lo, hi = report.stratified_bootstrap_ci(x, n_resamples=4000, seed=1)
    ref = stats.bootstrap(
        (x,), lambda a, axis: stats.trim_mean(a, 0.25, axis=axis), n_resamples=4000,
        method="percentile", random_state=1,
    ).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.1) and hi == pytest.approx(ref.high, abs=0.1)
    assert lo < report.iqm(x) < hi


def test_bootstrap_is_stratified_per_task():
    # Two tasks with very different scales: resampling within tasks keeps 8 runs of each, so the
    # pooled IQM of every resample is at least the mean of the middle, never all task-A values.
    scores = np.stack([np.zeros(8), np.full(8, 10.0)])
    lo, hi = report.stratified_bootstrap_ci(scores)
    assert lo == pytest.approx(5.0) and hi == pytest.approx(5.0)


def test_summarize_and_table():
    s = report.summarize(np.array([0.8, 0.8, 0.6, 0.8]), (0, 1, 2, 3), "cfg")
    assert s.mean == pytest.approx(0.75) and s.median == pytest.approx(0.8)
    assert s.std == pytest.approx(np.std([0.8, 0.8, 0.6, 0.8], ddof=1))
    table = report.format_table([s])
    assert "cfg" in table and "0.750" in table and "2:0.600" in table
    with pytest.raises(ValueError):
        report.summarize(np.zeros(3), (0, 1))


def test_trim_mean__bitwise_equal_to_scipy():
    rng = np.random.default_rng(3)
    for shape, axis in [((8,), 0), ((13,), 0), ((2000, 16), 1), ((5, 7), 0)]:
        x = rng.normal(size=shape)
        for proportion in (0.0, 0.1, 0.25, 0.4):
            np.testing.assert_array_equal(
                report.trim_mean(x, proportion, axis=axis), stats.trim_mean(x, proportion, axis=axis)
            )


def test_format_table__fraction_of_optimum_column():
    from train.report import format_table, fraction_of_optimum, summarize

    s = summarize(np.array([0.8, 0.8, 0.4, 0.8]), (0, 1, 2, 3), "grid")
    table = format_table([s], optimum=0.8)
    assert "IQM / optimum" in table and "(optimum 0.8)" in table
    assert table.splitlines()[3].rstrip().endswith(f"{s.iqm / 0.8:.3f}")
    assert "IQM / optimum" not in format_table([s])
    # a negative optimum (CliffWalking's -13): optimum / score
    assert fraction_of_optimum(-26.0, -13.0) == 0.5 and fraction_of_optimum(-13.0, -13.0) == 1.0
    assert np.isnan(fraction_of_optimum(0.3, 0.0))


def test_summarize__does_not_import_scipy_stats():
    """The seed table every run prints computes its IQM and CI without ``import scipy.stats``."""
    from tests.conftest import run_python

    out = run_python("""
import sys
import numpy as np
from train import report
s = report.summarize(np.array([0.1, 0.5, 0.2, 0.9, 0.4]), (0, 1, 2, 3, 4))
print(round(s.iqm, 6), "scipy.stats" in sys.modules)
""")
    assert out.split() == [str(round(float(stats.trim_mean([0.1, 0.5, 0.2, 0.9, 0.4], 0.25)), 6)), "False"]


def test_format_table__long_sweep_labels_are_whole_and_aligned():
    """Sweep points differ only at the end of their labels (``ent_coef=0`` vs ``ent_coef=0.01``):
    the table must show them whole, with the numbers still in aligned columns."""
    labels = ["learning_rate=0.001, ent_coef=0", "learning_rate=0.001, ent_coef=0.01"]
    table = report.format_table([report.summarize(np.array([0.5, 0.7]), (0, 1), lab) for lab in labels])
    rows = [line for line in table.splitlines() if line.startswith("learning_rate")]
    assert [r.split("  ")[0].rstrip() for r in rows] == labels
    assert len({r.index("±") for r in rows}) == 1
    assert {len(r) for r in rows} == {len(table.splitlines()[1])}  # the header spans the rows
