"""Training fed by the streaming tile dataset against the same tiles as one in-memory tensor.

Over the 630 OPERA RTC-S1 files (21 dates x 15 bursts x VV/VH, paired into 315 dual-polarisation
scenes, in dB, 32-pixel tiles): the time to build the tile index (one pass over every file),
then training images/s (over the whole run, from reading the first tile, and over its second
half, once the stream has read most scenes) and peak RSS of the same run fed three ways, each in a child process of
its own (so each peak RSS is its own): the ``TileDataset`` read in the training process, the
same with DataLoader workers, and ``dataset.to_tensor()`` (every tile in memory, the peer). The
runs are the same training step for step (same seed, same batches); only the feeding differs.
Run::

    python benchmarks/dataset.py [--train-steps 300] [--preset small] [--workers 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sar" / "opera_rtc_s1_santa_barbara"


def dataset(progress: bool = False):
    from geodiff.scaling import Scaler
    from geodiff.tile_dataset import TileDataset

    return TileDataset.from_scenes(str(DATA / "*" / "*.tif"), tile=32, band_files=("VV", "VH"),
                                   scaler=Scaler(db=True), progress=progress)


def train(feed: str, steps: int, preset: str, workers: int, threads: int) -> dict:
    """One training run fed by ``feed`` ("stream" or "memory"); images/s after a warm-up of 10 steps."""
    import resource

    import torch

    from geodiff.diffusion import NoiseSchedule, TrainConfig, Trainer
    from geodiff.diffusion.unet import UNet

    torch.set_num_threads(threads)
    ds = dataset()
    start = time.perf_counter()
    data = ds if feed == "stream" else ds.to_tensor()
    net = UNet.from_preset(preset, 2, seed=0)
    config = TrainConfig(train_steps=steps, batch_size=16, seed=0, progress=False, log_every=10,
                         num_workers=workers if feed == "stream" else 0)
    trainer = Trainer(net, NoiseSchedule("sigmoid", 1000), config, device="cpu")
    marks = [(0, time.perf_counter())]
    trainer.fit(data, callback=lambda record: marks.append((record["step"], time.perf_counter())))
    end = time.perf_counter()
    half = next(m for m in marks if m[0] >= steps // 2)
    images = steps * config.batch_size
    return {"feed": feed, "workers": config.num_workers, "tiles": len(ds), "steps": steps,
            # From reading the first tile (the tensor's build, or the stream's first batch) to the last step.
            "images_per_s": images / (end - start),
            # The second half of the run: the stream has read most scenes once by then.
            "images_per_s_second_half": (steps - half[0]) * config.batch_size / (marks[-1][1] - half[1]),
            "final_loss": trainer.history[-1]["loss"],
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _child(feed: str, args) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from dataset import train; "
            f"print(json.dumps(train({feed!r}, {args.train_steps}, {args.preset!r}, {args.workers}, {args.threads})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--preset", default="small")
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers of the second streaming run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if not DATA.exists():
        raise SystemExit(f"the OPERA files are not at {DATA}")
    start = time.monotonic()
    ds = dataset(progress=True)
    index_seconds = time.monotonic() - start
    print(f"tile index: {len(ds)} tiles from {ds.index['scene'].nunique()} scenes "
          f"({2 * ds.index['scene'].nunique()} files) in {index_seconds:.1f} s")
    runs = [_child("memory", args), _child("stream", argparse.Namespace(**{**vars(args), "workers": 0})),
            _child("stream", args)]
    memory = runs[0]
    print(f"\n{'feed':8s} {'workers':>7s} {'images/s':>9s} {'x memory':>9s} {'2nd half':>9s} {'x memory':>9s} "
          f"{'peak RSS':>9s} {'final loss':>11s}")
    for r in runs:
        print(f"{r['feed']:8s} {r['workers']:7d} {r['images_per_s']:9.1f} "
              f"{r['images_per_s'] / memory['images_per_s']:9.2f} {r['images_per_s_second_half']:9.1f} "
              f"{r['images_per_s_second_half'] / memory['images_per_s_second_half']:9.2f} "
              f"{r['peak_rss_gib']:8.2f}G {r['final_loss']:11.5f}")
    if args.json:
        args.json.write_text(json.dumps({"index_seconds": index_seconds, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
