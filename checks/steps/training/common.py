"""What the training checks share: thinning long series for plots, the loss plots, the skip for a
source without a loss curve."""

from __future__ import annotations

from ...analyses.curves import ema
from ...findings import PlotSpec, Series, SkipCheck


def thin(xs, ys, limit: int = 400):
    """Every k-th point so that a plot holds at most about `limit` points."""
    step = max(1, len(xs) // limit)
    return list(xs)[::step], list(ys)[::step]


def loss_plots(curves) -> list[PlotSpec]:
    """Train/valid loss per epoch (or step) and the raw and smoothed mini-batch loss, where logged."""
    plots = []
    if curves.has("train_loss") or curves.has("valid_loss"):
        series = [Series(name, curves.index, getattr(curves, role))
                  for name, role in (("train", "train_loss"), ("valid", "valid_loss")) if curves.has(role)]
        plots.append(PlotSpec("line", "Loss per " + curves.index_name, series, x_label=curves.index_name,
                              y_label="loss"))
    if curves.step_loss:
        xs, raw = thin(curves.step, curves.step_loss)
        _, smooth = thin(curves.step, ema(curves.step_loss))
        plots.append(PlotSpec("line", "Mini-batch training loss", [Series("loss", xs, raw),
                              Series("EMA-smoothed", xs, smooth)], x_label="step", y_label="loss"))
    return plots


def no_loss_curve(source: str, columns: str) -> SkipCheck:
    """The skip of a check that needs a training loss curve the source does not have."""
    return SkipCheck(f"no training loss curve in {source}\n{columns}; name the loss column loss or train_loss "
                     f"so it can be read.")
