"""Scale-out on this machine: scene sampling on dask.distributed workers, training on torchrun ranks.

Part 1, scenes: a synthetic scene from a tiny untrained network (one DDIM step, fused blocks;
see benchmarks/scene.py) streamed to Zarr, each run in a child process: in one process (dask's
threads, torch on ``--threads`` threads), and on a ``LocalCluster`` of 1 and of 2 worker
processes of one thread each. Printed: megapixels per second, the ratio 2 workers / 1 worker,
and the client's peak RSS (the client process, which holds the graph and the in-process
scheduler; the workers are processes of their own) on grids of growing size: it should stay
flat, since the workers write the store and nothing passes through the client.

Part 2, training: ``geodiff train`` on Campi Flegrei's velocity (32-pixel tiles, the "small"
network, a global batch of ``--batch-size``, ``--steps`` steps) in one process and under
``torchrun`` with 2 processes (gloo), every process on one thread, and one process on
``--threads`` threads for reference. Printed: training images per second (from the model's
summary: steps x global batch / seconds of training) and the ratio 2 processes / 1.

On a machine of 2 cores the ratios are bounded by 2; what they measure is the overhead of the
engines. Run::

    python benchmarks/scale_out.py [--sizes 1024 2048 4096] [--steps 30] [--batch-size 16]
                                     [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CAMPI = HERE.parent / ".." / "shared" / "data" / "insar" / "campi_flegrei" / "vel.tif"


def scene_run(side: int, workers: int, threads: int, out: Path) -> dict:
    """In this process: sample a ``side`` x ``side`` scene to ``out`` on ``workers`` worker
    processes (0: dask's threads here); seconds and the client's peak RSS."""
    import resource

    import torch
    from scene import lazy_grid, tiny_model

    import geodiff

    torch.set_num_threads(threads)
    model = tiny_model()

    def write():
        start = time.monotonic()
        synth = model.sample_scene(1, like=lazy_grid((side, side)), sampler="ddim", sample_steps=1, batch_size=64,
                                   mask=False)
        geodiff.to_zarr(synth, out, progress=False)
        return time.monotonic() - start

    if workers:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            client.run(lambda: __import__("geodiff"))  # workers import torch and geodiff before the clock starts
            seconds = write()
    else:
        seconds = write()
    return {"side": side, "workers": workers, "seconds": seconds, "megapixels_per_second": side * side / 1e6 / seconds,
            "client_peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _scene_child(side: int, workers: int, threads: int) -> dict:
    """:func:`scene_run` in a child process, so that its peak RSS is its own."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--scene-run", str(side), str(workers), str(threads), f"{tmp}/s.zarr"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"scene sampling on {workers} worker(s) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def train_run(nproc: int, threads: int, steps: int, batch_size: int) -> dict:
    """``geodiff train`` on ``nproc`` processes of ``threads`` threads each; images per second."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc > 1 else []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, *launcher, "-m", "geodiff", "train", str(CAMPI), "--out", f"{tmp}/m", "--tile", "32",
               "--preset", "small", "--batch-size", str(batch_size), "--train-steps", str(steps)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode:
            raise SystemExit(f"training on {nproc} process(es) failed:\n{done.stderr[-3000:]}")
        summary = json.loads((Path(tmp) / "m" / "model.json").read_text())["summary"]
    return {"processes": nproc, "threads": threads, "steps": summary["train_steps"], "seconds": summary["seconds"],
            "images_per_second": summary["train_steps"] * summary["batch_size"] / summary["seconds"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[1024, 2048, 4096], help="scene sides in pixels")
    p.add_argument("--steps", type=int, default=30, help="training steps per run")
    p.add_argument("--batch-size", type=int, default=16, help="global training batch")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the one-process references")
    p.add_argument("--json", type=Path)
    p.add_argument("--scene-run", nargs=4, help=argparse.SUPPRESS)  # a child: side workers threads store
    args = p.parse_args()
    if args.scene_run:
        side, workers, threads, store = args.scene_run
        print(json.dumps(scene_run(int(side), int(workers), int(threads), Path(store))))
        return

    runs = {"scenes": [], "training": []}
    print("scene sampling to Zarr (tiny network, 1 DDIM step, fused blocks)")
    for side in args.sizes:
        row = {w: _scene_child(side, w, args.threads if w == 0 else 1) for w in (0, 1, 2)}
        runs["scenes"] += list(row.values())
        print(f"  {side:5d} x {side:<5d} one process {row[0]['megapixels_per_second']:6.3f} Mpx/s | "
              f"1 worker {row[1]['megapixels_per_second']:6.3f} | 2 workers {row[2]['megapixels_per_second']:6.3f} "
              f"Mpx/s ({row[2]['megapixels_per_second'] / row[1]['megapixels_per_second']:.2f}x) | client peak RSS "
              f"{row[2]['client_peak_rss_gib']:.2f} GiB", flush=True)
    print("training (Campi Flegrei, 32-pixel tiles, small network)")
    for nproc, threads in ((1, args.threads), (1, 1), (2, 1)):
        r = train_run(nproc, threads, args.steps, args.batch_size)
        runs["training"].append(r)
        print(f"  {nproc} process(es) x {threads} thread(s): {r['images_per_second']:7.1f} images/s", flush=True)
    one, two = runs["training"][1], runs["training"][2]
    print(f"  2 processes / 1 process (1 thread each): {two['images_per_second'] / one['images_per_second']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
