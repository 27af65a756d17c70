"""The quickstart notebook runs end to end on real data (with a tiny configuration)."""

from pathlib import Path

import pytest

from tests.conftest import require_data

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"

TINY = '''from pathlib import Path
DATA = Path({data!r})
TILE = 16
EPOCHS = 1
PRESET = "tiny"
STEPS = 3
N = 2'''


def test_quickstart_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    data = require_data()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    params[0].source = TINY.format(data=str(data))
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "synthetic-velocity.tif").is_file()
    assert (tmp_path / "campi-flegrei-model" / "model.json").is_file()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
