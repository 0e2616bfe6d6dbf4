"""Figures as PNG bytes: one helper the lessons, the claims lab and the run report share."""

import io


def png(fig):
    """Return a matplotlib figure as PNG bytes, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
