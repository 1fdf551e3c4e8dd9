"""Slingshots: bursts of last-layer norm growth, each ended by a training-loss spike.

Thilak et al. (2022) describe a slingshot as "a period of rapid growth of the last layer
weights, an ensuing training loss spike, and a norm plateau", repeating cyclically under
adaptive optimisers late in training; the paper finds them by inspecting the curves. The
detector here is a documented rule of ours (not the paper's), run on logged curves on the
host. The spikes are unmistakable (the loss jumps by orders of magnitude from near zero),
so it starts from them:

1. a training-loss **spike** at log t is L_t ≥ ``spike`` · max(min(L over the ``lag`` logs
   before t), ``floor``) (the float32 cross-entropy of a fitted example underflows to 0, so
   losses below ``floor`` count as ``floor``); spikes closer than ``lag`` logs are one event,
   at its first log;
2. the norm's growth rate r_i = Δ log ‖W‖ / Δ step between consecutive logs, and the
   typical rate b = median_i |r_i| over the run;
3. before each spike event, the logs since the previous event (at most ``lag``): the event
   is a **slingshot** when the norm's peak rate there exceeds ``growth`` · b; the burst's
   onset is the first log from which the rate stays at least half that peak up to the
   peak, and its end the spike.
"""

import numpy as np
import pandas as pd

COLUMNS = ("onset", "end", "norm_before", "norm_after", "norm_ratio", "spike_step",
           "spike_ratio", "peak_rate", "slingshot")


def loss_spikes(loss, spike: float = 10.0, lag: int = 20, floor: float = 1e-7
                ) -> np.ndarray:
    """(n,) ratio L_t / max(min(L over the ``lag`` logs before t), ``floor``) (1 at t = 0);
    a spike where it is ≥ ``spike``."""
    loss = np.asarray(loss, float)
    ratio = np.ones_like(loss)
    for t in range(1, loss.size):
        ratio[t] = loss[t] / max(loss[max(0, t - lag):t].min(), floor)
    return ratio


def detect_slingshots(steps, norm, loss, growth: float = 5.0, spike: float = 10.0,
                      lag: int = 20, floor: float = 1e-7) -> pd.DataFrame:
    """Loss-spike events and which of them end a norm-growth burst: slingshots (see the
    module docstring).

    Args:
        steps: (n,) logged steps, increasing.
        norm: (n,) last-layer weight norm ‖W‖ at those steps (> 0).
        loss: (n,) training loss at those steps.
        growth: a burst's peak rate exceeds this multiple of the run's median |rate|.
        spike: a loss spike is this multiple of the recent minimum.
        lag: logs of the spike's look-back, of the merging of spikes, and of the longest
            burst.
        floor: losses below it count as it in the spike ratio.

    Returns:
        One row per spike event, in time order: onset and end (steps) of the burst before
        it, norm_before and norm_after (at onset and end), norm_ratio, spike_step,
        spike_ratio, peak_rate (the norm's peak growth rate before the spike, per step) and
        slingshot (peak_rate > growth × the median rate).

    Examples:
        >>> steps = np.arange(0, 3000, 10)
        >>> norm = np.where(steps < 1000, 10.0, np.where(steps < 1200,
        ...                 10 * np.exp((steps - 1000) / 200), 10 * np.e))
        >>> loss = np.where((steps >= 1200) & (steps < 1230), 1e-1, 1e-4)
        >>> found = detect_slingshots(steps, norm * (1 + 1e-4 * np.sin(steps)), loss)
        >>> found[["onset", "end", "slingshot"]].to_dict("records")
        [{'onset': 1000, 'end': 1200, 'slingshot': True}]
    """
    steps, norm, loss = (np.asarray(a, float) for a in (steps, norm, loss))
    if not (steps.shape == norm.shape == loss.shape) or steps.ndim != 1:
        raise ValueError("steps, norm and loss must be 1-d arrays of one length")
    if steps.size < 3 or not (norm > 0).all():
        return pd.DataFrame(columns=list(COLUMNS))
    rate = np.diff(np.log(norm)) / np.diff(steps)  # rate[i]: from log i to log i + 1
    typical = float(np.median(np.abs(rate)))
    ratio = loss_spikes(loss, spike, lag, floor)
    events = []
    for t in np.flatnonzero(ratio >= spike):
        if not events or t - events[-1] > lag:
            events.append(int(t))
    rows, previous = [], 0
    for t in events:
        first = max(previous, t - lag)
        window = rate[first:t]
        previous = t
        if window.size == 0:
            continue
        k = first + int(np.argmax(window))
        peak = float(rate[k])
        onset = k
        while onset > first and rate[onset - 1] >= 0.5 * peak:
            onset -= 1
        rows.append({"onset": steps[onset], "end": steps[t], "norm_before": norm[onset],
                     "norm_after": norm[t], "norm_ratio": norm[t] / norm[onset],
                     "spike_step": steps[t], "spike_ratio": ratio[t], "peak_rate": peak,
                     "slingshot": bool(peak > 0 and peak > growth * typical)})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("onset", "end", "spike_step"):
        table[column] = table[column].astype(int)
    return table
