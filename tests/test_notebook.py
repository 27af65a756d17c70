"""The quickstart notebook runs end to end on real data (with a tiny configuration), and a user
without the project's data folder can run it as it is."""

import ast
from pathlib import Path

import pytest

from tests.conftest import require_data

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"

TINY = '''SCENE = {scene!r}
TILE = 16
EPOCHS = 1
PRESET = "tiny"
SAMPLE_STEPS = 3
N = 2'''


@pytest.mark.parametrize("real", [True, False], ids=["real-product", "demo-scene"])
def test_quickstart_executes(tmp_path, real):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    scene = str(require_data("insar", "campi_flegrei", "vel.tif")) if real else None
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    params[0].source = TINY.format(scene=scene)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "synthetic-velocity.tif").is_file()
    assert (tmp_path / "quickstart-model" / "model.json").is_file()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]


def test_quickstart_needs_nothing_a_user_does_not_have():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "shared" not in code and "GEODIFF_DATA" not in code
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    defaults = {node.targets[0].id: ast.literal_eval(node.value)
                for node in ast.parse(params[0].source).body if isinstance(node, ast.Assign)}
    assert defaults["SCENE"] is None  # the embedded demo scene
