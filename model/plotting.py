"""Headless matplotlib for the report figures of ``summarize`` and ``evaluate``."""


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, so figures render without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path):
    """Write ``fig`` to ``path`` at 120 dpi, close it, and return ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
