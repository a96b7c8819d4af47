"""Issue 12 item 8: plots that read at any size, with values and named baselines; pack --out writes them too."""

import doctest

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from arrange import report  # noqa: E402
from arrange.cli import main  # noqa: E402
from arrange.report import bar_rows, block_density, plot_layer_bars, plot_packed_matrix  # noqa: E402


def test_report_doctests():
    """The examples in arrange.report's docstrings hold."""
    assert doctest.testmod(report).failed == 0


def test_bar_rows_keep_the_largest_layers_and_sum_the_rest():
    """45 layers: the 24 largest in model order, then one 'others' bar whose value is the ratio of the sums."""
    rng = np.random.default_rng(0)
    n = 45
    sizes = list(rng.integers(1, 1000, n))
    pairs = [(int(a), int(b)) for a, b in zip(rng.integers(50, 100, n), rng.integers(10, 50, n))]
    names = [f"l{i}" for i in range(n)]
    labels, values = bar_rows(names, sizes, {"engine": pairs, "none": [None] * n})
    top = sorted(np.argsort(-np.array(sizes), kind="stable")[:report.TOP_LAYERS])
    assert labels == [names[i] for i in top] + [f"others ({n - report.TOP_LAYERS} layers)"]
    rest = sorted(set(range(n)) - set(top))
    assert values["engine"][-1] == pytest.approx(sum(pairs[i][0] for i in rest) / sum(pairs[i][1] for i in rest))
    assert values["engine"][:-1] == [pairs[i][0] / pairs[i][1] for i in top]
    assert values["none"] == [None] * len(labels)


def test_bar_plot_height_is_capped(tmp_path):
    """A 45-layer and a 400-layer model give the same figure height: the bars stay readable."""
    heights = []
    for n in (45, 400):
        path = plot_layer_bars(str(tmp_path / f"b{n}.png"), [f"layer.{i}" for i in range(n)], [1] * n,
                               {"this engine": [(3, 1)] * n, "column combining": [(2, 1)] * n}, "t")
        heights.append(imread(path).shape[0])
    assert heights[0] == heights[1] < 2200


def test_block_density_is_exact():
    """Each block's value is the fraction of nonzeros it holds; partial edge blocks average what they hold."""
    rng = np.random.default_rng(1)
    m = rng.random((130, 1001)) < 0.3
    d, (br, bc) = block_density(m, blocks=(64, 100))
    assert d.shape[0] <= 64 and d.shape[1] <= 100
    assert d[1, 2] == pytest.approx(m[br:2 * br, 2 * bc:3 * bc].mean())
    assert d[-1, -1] == pytest.approx(m[(d.shape[0] - 1) * br:, (d.shape[1] - 1) * bc:].mean())


def test_huge_layer_picture_is_a_block_heat_map(tmp_path):
    """A 128 x 131072 layer draws at the same image size as a small one, quickly, one pixel per block."""
    rng = np.random.default_rng(2)
    small = plot_packed_matrix(str(tmp_path / "s.png"), "s", rng.random((16, 40)) < 0.3, rng.random((16, 8)))
    big = plot_packed_matrix(str(tmp_path / "b.png"), "lm_head", rng.random((128, 131072)) < 0.05,
                             rng.random((128, 16384)) < 0.6)
    assert imread(small).shape == imread(big).shape


def test_pack_out_writes_its_plots(tmp_path, capsys):
    """pack --out writes compression_per_layer.png and packed_matrix.png next to the report."""
    assert main(["pack", "digits", "--sparsity", "0.8", "--gamma", "0.1", "--solver", "ffd", "--time-limit", "0.5",
                 "--out", str(tmp_path)]) == 0
    for name in ("compression_per_layer.png", "packed_matrix.png"):
        assert imread(tmp_path / name).shape[0] > 100
