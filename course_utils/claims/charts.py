"""The plots of the quantitative claims (:data:`PLOTTED`): :func:`plot_data` gathers the
numbers behind them from the harness's results (JSON-ready, so a notebook can record them) and
:func:`plot` draws one claim's figure with matplotlib.
"""

import numpy as np

from .catalogue import DEFAULT_MODE, FRAMEWORKS, MODES, NAMES
from .experiments import OP_LABELS
from .rules import spread
from .verdicts import C4_MODELS


def plot_data(results):
    """Return the numbers behind the plots of the quantitative claims (JSON-ready), from the
    harness's results: C3/C4 step spreads between processes (lowest, median, highest) per mode,
    C5/C6 memory, C7 accuracies, C9 ops."""
    pt, tf = results["pytorch"], results["tensorflow"]
    both = (("pytorch", pt), ("tensorflow", tf))
    data = {
        "C3": {
            fw: {m: spread(e["times"]) for m, e in r["timing"]["small"].items()} for fw, r in both
        },
        "C4": {
            fw: {
                f"{model} {m}": spread(e["times"])
                for model in C4_MODELS
                for m, e in r["timing"].get(model, {}).items()
            }
            for fw, r in both
        },
        "C5": {
            fw: {
                k: r["memory"][DEFAULT_MODE[fw]][k]
                for k in ("runtime", "train_peak", "train_delta")
            }
            for fw, r in both
        },
        "C6": {fw: {m: e["steady_delta"] for m, e in r["memory"].items()} for fw, r in both},
        "C7": {
            "seeds": pt["accuracy"]["seeds"],
            **{fw: r["accuracy"]["test_accuracy"] for fw, r in both},
        },
        "C9": {
            "ops": list(pt["ops"]["cpu"]),
            **{
                fw: [spread(r["ops"]["cpu"][op]["times"]) for op in pt["ops"]["cpu"]]
                for fw, r in both
            },
        },
    }
    accel = {fw: r["memory"][DEFAULT_MODE[fw]].get("accelerator_peak") for fw, r in both}
    if all(v is not None for v in accel.values()):
        for fw in FRAMEWORKS:
            data["C5"][fw]["accelerator_peak"] = accel[fw]
    return data


PLOTTED = ("C3", "C4", "C5", "C6", "C7", "C9")
COLOURS = {"pytorch": "#ee4c2c", "tensorflow": "#ff8f00"}


def plot(claim, data, ax=None):
    """Draw the plot of a quantitative claim (one of :data:`PLOTTED`) from :func:`plot_data`'s
    numbers; return the matplotlib figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
    else:
        fig = ax.figure
    d = data[claim]
    if claim in ("C3", "C4"):
        labels, x = [], 0
        for fw in FRAMEWORKS:
            for mode in d[fw]:
                q1, med, q3 = d[fw][mode]
                ax.bar(
                    x,
                    med * 1e3,
                    yerr=[[(med - q1) * 1e3], [(q3 - med) * 1e3]],
                    color=COLOURS[fw],
                    capsize=3,
                )
                labels.append(f"{NAMES[fw]}\n{mode}")
                x += 1
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("training step (ms, log scale)")
        what = "small MLP" if claim == "C3" else "large MLP and small CNN"
        ax.set_title(f"{claim}: {what}, median and range over processes")
    elif claim == "C5":
        keys = [
            k
            for k in ("runtime", "train_peak", "train_delta", "accelerator_peak")
            if k in d["pytorch"]
        ]
        pos = np.arange(len(keys))
        for off, fw in ((-0.2, "pytorch"), (0.2, "tensorflow")):
            ax.bar(pos + off, [d[fw][k] for k in keys], 0.4, label=NAMES[fw], color=COLOURS[fw])
        ax.set_xticks(
            pos,
            ["framework loaded", "peak in training", "added by training", "allocator peak"][
                : len(keys)
            ],
        )
        ax.set_ylabel("MiB")
        ax.set_title("C5: memory of the default training mode")
        ax.legend()
    elif claim == "C6":
        labels, x = [], 0
        for fw in FRAMEWORKS:
            for mode in [m for m in MODES[fw] if m in d[fw]]:
                ax.bar(x, d[fw][mode], color=COLOURS[fw])
                labels.append(f"{NAMES[fw]}\n{mode}")
                x += 1
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylabel("MiB added by steady steps")
        ax.set_title("C6: eager vs graph modes")
    elif claim == "C7":
        for fw, marker in (("pytorch", "o"), ("tensorflow", "x")):
            ax.plot(d["seeds"], d[fw], marker, label=NAMES[fw], color=COLOURS[fw], ms=8)
        ax.set_xlabel("seed")
        ax.set_ylabel("test accuracy")
        ax.set_title("C7: same weights and batches per seed")
        ax.legend()
    elif claim == "C9":
        ratio = [tq[1] / pq[1] for pq, tq in zip(d["pytorch"], d["tensorflow"], strict=True)]
        ax.barh(
            range(len(ratio)),
            ratio,
            color=[COLOURS["pytorch"] if r > 1 else COLOURS["tensorflow"] for r in ratio],
        )
        ax.axvline(1, color="gray", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks(range(len(ratio)), [OP_LABELS.get(op, op) for op in d["ops"]], fontsize=8)
        ax.set_xlabel("TensorFlow time / PyTorch time (below 1: TensorFlow faster)")
        ax.set_title("C9: the same operations on the CPU")
    else:
        raise ValueError(f"no plot for {claim}")
    fig.tight_layout()
    return fig
