"""The seeded examples run end to end at tiny sizes (2 seeds, a few steps, the CPU): each writes its figures, its
table of mean ± standard error with the conclusions' rule, and its JSON into --output-dir, and nothing into the
tracked examples/results/."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# (script, tiny flags, the files it writes)
EXAMPLES = {
    "ring_drs_mhgan": (["--steps", "3", "--samples", "500"], ["ring_drs_mhgan.png"]),
    "gmmn_ring": (["--steps", "3", "--batch", "64"], ["gmmn_ring.png"]),
    "r3gan_toy": (["--steps", "3", "--batch", "32"], ["r3gan_toy.png"]),
    "digits_dcgan": (["--steps", "4", "--eval-every", "2", "--mh-k", "4", "--feature-steps", "20"],
                     ["digits_dcgan_samples.png", "digits_dcgan_metrics.png"]),
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_with_seeds_and_writes_into_its_output_dir(name, tmp_path):
    flags, figures = EXAMPLES[name]
    before = sorted((ROOT / "examples" / "results").iterdir())
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), "--seeds", "2", "--device", "cpu",
                           "--output-dir", str(out), *flags], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    for file in figures + [f"{name}.md", f"{name}.json"]:
        assert (out / file).stat().st_size > 0, file
    table = (out / f"{name}.md").read_text()
    assert "2 seeds" in table and " ± " in table
    assert "2·sqrt(se_A² + se_B²)" in table or "2·se(Δ)" in table  # the independent or the paired rule
    assert "Conclusions" in done.stdout
    json.loads((out / f"{name}.json").read_text())
    assert sorted((ROOT / "examples" / "results").iterdir()) == before
