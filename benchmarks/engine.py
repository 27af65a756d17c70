"""Diffusion engine speed: geodiff vs denoising-diffusion-pytorch, measured in one run.

Both engines train and sample the same problem: 1-channel 64x64 tiles, batch 16, a UNet of
matched parameter count (within 10 %), the same torch thread count. Reported:

- training images/s: a full optimizer step (forward, loss, backward, AdamW/Adam step; geodiff
  also updates its EMA) through each library's own training path (``Trainer`` vs
  ``GaussianDiffusion.forward``);
- sampling network evaluations/s: DDIM with each library's own sampler under inference mode.

On CUDA it also measures geodiff's bf16 autocast training throughput and the fraction of the
GPU's bf16 dense peak it reaches (model FLOPs per image, counted by torch's FlopCounterMode,
times images/s, over the peak). Run::

    python benchmarks/engine.py [--threads N] [--rounds 3] [--sample-steps 10] [--device cpu]

denoising-diffusion-pytorch is a benchmark-only dependency (``pip install --no-deps
denoising-diffusion-pytorch einops``). Its package ``__init__`` and main module import
torchvision, accelerate and ema_pytorch at import time for its image-folder Trainer. torchvision
wheels are tied to one torch build and cannot be installed beside this torch, so
:func:`load_peer` registers the package without running its ``__init__`` and puts inert
placeholders for those three modules (only where they are not installed) before importing the
module that defines ``Unet`` and ``GaussianDiffusion``; neither class touches them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
import types
from pathlib import Path

import torch

from geodiff.diffusion import NoiseSchedule, sample
from geodiff.diffusion.train import TrainConfig, Trainer
from geodiff.diffusion.unet import UNet

SIZE, CHANNELS, BATCH = 64, 1, 16
PEER_UNET = {"dim": 32, "dim_mults": (1, 2, 4, 8), "channels": CHANNELS}
# Same parameter budget: improved-DDPM layout with multipliers chosen to land within 10 %.
GEODIFF_UNET = {
    "base_channels": 32,
    "channel_mult": (1, 2, 3, 6),
    "num_res_blocks": 2,
    "attention_resolutions": (8,),
    "num_heads": 4,
    "dropout": 0.0,
}

# Dense bf16 tensor-core peaks (TFLOP/s) by device-name fragment, from the vendors' data sheets.
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
}


def load_peer() -> types.ModuleType:
    """Import ``denoising_diffusion_pytorch.denoising_diffusion_pytorch`` without torchvision & co."""
    spec = importlib.util.find_spec("denoising_diffusion_pytorch")
    if spec is None:
        sys.exit(
            "denoising-diffusion-pytorch is not installed: "
            "pip install --no-deps denoising-diffusion-pytorch einops"
        )
    package = types.ModuleType("denoising_diffusion_pytorch")
    package.__path__ = [str(Path(spec.origin).parent)]
    sys.modules.setdefault("denoising_diffusion_pytorch", package)

    class Unavailable:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("not available in this benchmark")

    for name, attrs in {
        "torchvision": ("transforms", "utils"),
        "accelerate": ("Accelerator",),
        "ema_pytorch": ("EMA",),
    }.items():
        if importlib.util.find_spec(name) is None:
            stub = types.ModuleType(name)
            for attr in attrs:
                setattr(stub, attr, Unavailable)
            sys.modules[name] = stub
    module = importlib.import_module("denoising_diffusion_pytorch.denoising_diffusion_pytorch")
    module.tqdm = lambda iterable, *args, **kwargs: iterable  # no progress bar inside the timing
    return module


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peer_trainer(diffusion, device):
    """One optimizer step of the peer's own training path, as a callable."""
    opt = torch.optim.Adam(diffusion.parameters(), lr=1e-4)
    x = torch.rand(BATCH, CHANNELS, SIZE, SIZE, device=device)  # the peer expects data in [0, 1]

    def step():
        diffusion(x).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def geodiff_trainer(model, schedule, device, amp: str = "fp32", compile: bool = False) -> Trainer:
    """geodiff's Trainer on random tiles in [-1, 1]."""
    config = TrainConfig(
        lr=1e-4, batch_size=BATCH, progress=False, log_every=10**9, amp=amp, compile=compile
    )
    return Trainer(model, schedule, config, device=device)


def geodiff_train_step(trainer: Trainer):
    """One optimizer step of geodiff's Trainer (EMA update included), as a callable."""
    data = torch.rand(64, CHANNELS, SIZE, SIZE) * 2 - 1
    return lambda: trainer.fit(data, train_steps=trainer.step + 1)


def peer_sampler(diffusion, steps: int):
    diffusion.sampling_timesteps, diffusion.is_ddim_sampling = steps, True
    return lambda: diffusion.sample(batch_size=BATCH)


def geodiff_sampler(trainer: Trainer, steps: int):
    """DDIM with the EMA model as the Trainer hands it over for sampling."""
    model, schedule, device = trainer.ema_model(), trainer.schedule, trainer.device
    shape = (BATCH, CHANNELS, SIZE, SIZE)

    def run():
        with torch.inference_mode():
            sample(model, schedule, shape, sampler="ddim", sample_steps=steps, seed=0, device=device)

    return run


def best_times(fns: dict, rounds: int, repeat: int, device) -> dict[str, float]:
    """Best-of-``rounds`` seconds per call of each function, the engines interleaved round by round
    so that load from other processes on the machine hits both alike."""
    best = {name: float("inf") for name in fns}
    for fn in fns.values():  # warm-up (allocator, oneDNN kernels, lazy buffers)
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(repeat):
                fn()
            sync(device)
            best[name] = min(best[name], (time.perf_counter() - start) / repeat)
    return best


def train_flops_per_image(model, device) -> float:
    """FLOPs of one forward + backward pass per image (torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(BATCH, CHANNELS, SIZE, SIZE, device=device)
    t = torch.randint(0, 1000, (BATCH,), device=device)
    with FlopCounterMode(display=False) as counter:
        model(x, t).square().mean().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / BATCH


def bf16_peak(device) -> float | None:
    name = torch.cuda.get_device_name(device)
    for key, tflops in BF16_PEAK_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--train-steps", type=int, default=2, help="optimizer steps per timed round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (best one reported)")
    parser.add_argument("--sample-steps", type=int, default=10)
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="bf16 dense peak of the GPU"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile for the bf16 run")
    args = parser.parse_args(argv)

    from geodiff.diffusion.device import pick_device

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    ddp = load_peer()

    torch.manual_seed(0)
    peer_unet = ddp.Unet(**PEER_UNET).to(device)
    peer = ddp.GaussianDiffusion(
        peer_unet, image_size=SIZE, timesteps=1000, objective="pred_noise", beta_schedule="cosine"
    ).to(device)
    ours = UNet(CHANNELS, CHANNELS, seed=0, **GEODIFF_UNET)
    schedule = NoiseSchedule("cosine", timesteps=1000)
    ratio = n_params(ours) / n_params(peer_unet)
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{CHANNELS}x{SIZE}x{SIZE}, batch {BATCH}"
    )
    print(
        f"parameters: geodiff {n_params(ours) / 1e6:.2f}M, denoising-diffusion-pytorch "
        f"{n_params(peer_unet) / 1e6:.2f}M (ratio {ratio:.3f})"
    )
    if not 0.9 <= ratio <= 1.1:
        sys.exit("parameter counts differ by more than 10 %; adjust GEODIFF_UNET")

    trainer = geodiff_trainer(ours, schedule, device)
    train = best_times(
        {"geodiff": geodiff_train_step(trainer), "peer": peer_trainer(peer, device)},
        args.rounds,
        args.train_steps,
        device,
    )
    steps = args.sample_steps
    samp = best_times(
        {"geodiff": geodiff_sampler(trainer, steps), "peer": peer_sampler(peer, steps)},
        args.rounds,
        1,
        device,
    )
    rows = [
        ("training images/s", BATCH / train["geodiff"], BATCH / train["peer"]),
        ("sampling network evaluations/s", steps / samp["geodiff"], steps / samp["peer"]),
    ]

    print(f"{'':34s}{'geodiff':>12s}{'ddpm-pytorch':>14s}{'ratio':>8s}")
    for name, g, p in rows:
        print(f"{name:34s}{g:12.2f}{p:14.2f}{g / p:8.2f}x")

    if device.type == "cuda":
        bf16_trainer = geodiff_trainer(
            UNet(CHANNELS, CHANNELS, seed=0, **GEODIFF_UNET), schedule, device, "bf16", args.compile
        )
        step = geodiff_train_step(bf16_trainer)
        bf16 = BATCH / best_times({"bf16": step}, args.rounds, 4 * args.train_steps, device)["bf16"]
        flops = train_flops_per_image(
            UNet(CHANNELS, CHANNELS, seed=0, **GEODIFF_UNET).to(device), device
        )
        peak = args.peak_tflops * 1e12 if args.peak_tflops else bf16_peak(device)
        print(
            f"geodiff bf16 training images/s: {bf16:.1f} ({flops / 1e9:.2f} GFLOP per image, fwd+bwd)"
        )
        if peak is None:
            print(f"unknown bf16 peak for {torch.cuda.get_device_name(device)}; pass --peak-tflops")
        else:
            print(
                f"fraction of bf16 dense peak ({peak / 1e12:.0f} TFLOP/s): {flops * bf16 / peak:.1%}"
            )


if __name__ == "__main__":
    main()
