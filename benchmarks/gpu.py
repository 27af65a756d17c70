"""The GPU paths, measured: training images/s and the fraction of bf16 peak, sampling
evaluations/s, and the fidelity benchmark at a short budget. One script for a lent GPU.

Training: the UNet of ``--preset`` on random ``--tile`` x ``--tile`` tiles (throughput does not
depend on the data), global batch ``--batch-size``, with the CUDA policy (bf16 autocast,
channels-last) eager and under ``torch.compile``; images/s after ``--warmup`` steps, over
``--steps`` steps. The fraction of peak is images/s times the FLOPs of one image's forward and
backward pass (torch's FlopCounterMode) over the device's dense bf16 peak (``--peak-tflops``, or
the table below by device name). Sampling: ``sample_tiles`` of ``--samples`` tiles at 25
evaluations, in tile evaluations per second. Fidelity: ``benchmarks/fidelity.py --budget
--fidelity-budget`` in a child process, its table printed as it runs. Run::

    python benchmarks/gpu.py [--preset base] [--tile 64] [--batch-size 64] [--fidelity-budget 120]
                             [--json out.json]

``--allow-cpu`` runs it on the CPU (a check of the script, not a measurement: bf16, channels-last
and compile are GPU-only in geodiff's policy and stay off).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

#: Dense bf16 tensor-core peaks (TFLOP/s) by a part of the device name.
PEAK_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "A10": 125.0, "L4": 121.0}


def peak_tflops(name: str, given: float | None) -> float | None:
    if given:
        return given
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def flops_per_image(net, tile: int, channels: int) -> float:
    """FLOPs of one image's forward and backward pass, fp32 eager."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(net.parameters()).device
    x, t = torch.randn(2, channels, tile, tile, device=device), torch.randint(0, 1000, (2,), device=device)
    with FlopCounterMode(display=False) as counter:
        net(x, t).square().mean().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2


def train_rate(args, compiled: bool, device) -> tuple[float, object]:
    from geodiff.diffusion import NoiseSchedule, TrainConfig, Trainer
    from geodiff.diffusion.unet import UNet

    net = UNet.from_preset(args.preset, 1, seed=0)
    tiles = torch.randn(4 * args.batch_size, 1, args.tile, args.tile)
    config = TrainConfig(train_steps=args.warmup, batch_size=args.batch_size, progress=False, compile=compiled or None)
    trainer = Trainer(net, NoiseSchedule("sigmoid", 1000), config, device=device)
    trainer.fit(tiles)  # warm-up, compilation included
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.fit(tiles, train_steps=args.warmup + args.steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch_size / (time.perf_counter() - start), trainer


def sample_rate(args, trainer) -> float:
    import numpy as np

    from geodiff.model import DiffusionModel
    from geodiff.scaling import Coefficients, Scaler

    coefficients = Coefficients("minmax", np.zeros((1, 1)), np.ones((1, 1)), units="dB")
    model = DiffusionModel(network=trainer.ema_model(), schedule=trainer.schedule, scaler=Scaler(),
                           coefficients=coefficients, tile=(args.tile, args.tile), units="dB", prediction="v")
    model.sample_tiles(min(args.samples, 16), sample_steps=2, batch_size=args.samples, device=trainer.device,
                       progress=False)
    start = time.perf_counter()
    model.sample_tiles(args.samples, sample_steps=25, batch_size=args.samples, device=trainer.device, progress=False)
    return args.samples * 25 / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="base")
    p.add_argument("--tile", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--warmup", type=int, default=20, help="steps before the clock starts")
    p.add_argument("--steps", type=int, default=100, help="timed training steps")
    p.add_argument("--samples", type=int, default=256, help="tiles sampled at 25 evaluations")
    p.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not in the table")
    p.add_argument("--fidelity-budget", type=float, default=120.0, help="seconds per engine and product; 0 skips")
    p.add_argument("--allow-cpu", action="store_true", help="run on the CPU: a check of the script only")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if not torch.cuda.is_available() and not args.allow_cpu:
        raise SystemExit("no CUDA device: this script measures the GPU paths (--allow-cpu to check it on the CPU)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    out = {"device": name, "torch": torch.__version__, "preset": args.preset, "tile": args.tile,
           "batch_size": args.batch_size}
    print(f"{name}, torch {torch.__version__}, preset {args.preset}, {args.tile} px tiles, batch {args.batch_size}")
    peak = peak_tflops(name, args.peak_tflops)
    for compiled in (False, True) if device.type == "cuda" else (False,):
        rate, trainer = train_rate(args, compiled, device)
        flops = flops_per_image(trainer.model, args.tile, 1)
        fraction = None if peak is None else rate * flops / (peak * 1e12)
        label = "compiled" if compiled else "eager"
        out[f"train_images_per_s_{label}"], out[f"peak_fraction_{label}"] = rate, fraction
        print(f"  training ({label}, amp {trainer.amp_dtype}, channels-last {trainer.channels_last}): "
              f"{rate:8.1f} images/s, {flops / 1e9:.2f} GFLOP per image, "
              + (f"{100 * fraction:.1f} % of {peak:.0f} TFLOP/s" if fraction is not None else "peak unknown"),
              flush=True)
    out["sample_evaluations_per_s"] = rate = sample_rate(args, trainer)
    print(f"  sampling: {rate:8.1f} tile evaluations/s ({args.samples} tiles, 25 evaluations)", flush=True)
    if args.fidelity_budget:
        cmd = [sys.executable, str(Path(__file__).with_name("fidelity.py")), "--budget", str(args.fidelity_budget),
               "--json", "fidelity-gpu.json"]
        print("  fidelity:", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
