"""A notebook in a real kernel (nbclient): the user's inline plots render before and after a
stratlang plot (which never touches the global matplotlib backend), the stratlang plot
renders too, and a summary shows as HTML."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

CELLS = [
    # the user's own plot, inline
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3]);",
    # a stratlang fit and its picture
    "import numpy as np, pandas as pd, stratlang\n"
    "rng = np.random.default_rng(0)\n"
    "t = rng.integers(0, 5, 200); x = rng.normal(size=200)\n"
    "frame = pd.DataFrame({'t': t, 'x': x, 'y': x * np.sin(t) + rng.normal(size=200) / 10})\n"
    "fitted = stratlang.load('response y ~ squared\\nfeatures x\\n"
    "stratify t ~ path weight 1\\n').fit(frame)\n"
    "fitted.plot()",
    # the user's next plot, after stratlang's
    "plt.figure()\nplt.plot([3, 1, 2]);",
    "fitted.summary()",
]


def test_plots_and_summary_render_in_a_real_kernel(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    kinds = [[set(o.get("data", {})) for o in cell.outputs] for cell in notebook.cells]
    errors = [o for cell in notebook.cells for o in cell.outputs if o.output_type == "error"]
    assert errors == []
    for plotted in (0, 1, 2):  # each plot cell shows a PNG
        assert any("image/png" in k for k in kinds[plotted]), (plotted, kinds[plotted])
    summary = notebook.cells[3].outputs[0]
    assert summary.output_type == "execute_result" and "text/html" in summary.data
    assert "<table" in summary.data["text/html"]
    assert summary.data["text/plain"].startswith("'model ")  # its text, as a str's repr
