"""Fidelity at an equal CPU budget: geodiff against denoising-diffusion-pytorch on real radar tiles.

Both engines train for the same wall-clock budget, one after the other, with the same torch
thread count, on the same 32 x 32 training tiles, normalised per tile to [-1, 1] (min-max); both
sample 128 tiles at each number of network evaluations, rescaled with per-tile coefficients drawn
from the training tiles (Tuel et al. 2023), and are scored against held-out real tiles that
neither saw, with every figure of :func:`geodiff.metrics.evaluate` (FID, KID and precision/recall
on a feature extractor trained on the training tiles, where the held-out set is large enough).
Every figure is printed beside its real-vs-real floor (* marks a figure within it) and, for
geodiff, its ratio to the peer at the same number of evaluations (below 1: geodiff is closer to
the real data). The floor is the figure between the held-out tiles and 128 training tiles, over
five draws: what a generator that reproduced its training tiles exactly would score, with the
same set sizes and the same shift between training and held-out tiles that drawn coefficients
carry. Tiles are held out at random, or as whole interferograms where tiles overlap (Mexico);
Campi Flegrei is one scene, so its held-out tiles overlap training tiles and its floor is tight.

Products (from ../shared/data): OPERA RTC-S1 VV backscatter in dB, the Mexico City unwrapped
interferograms (rad), the Campi Flegrei LiCSBAS velocities (mm/yr). Run::

    python benchmarks/fidelity.py [--budget 60] [--products opera mexico campi] [--threads 1]
                                  [--recipes defaults iddpm defaults+karras] [--evals 10 25 50] [--json out.json]

The default budget (60 s per engine and product) is a quick look; the figures in
docs/benchmarks.md use ``--budget 600``. denoising-diffusion-pytorch is a benchmark-only
dependency (``pip install --no-deps denoising-diffusion-pytorch einops ema-pytorch``; see
benchmarks/engine.py for why --no-deps). Its Unet (dim 32, mults 1-2-4) and GaussianDiffusion keep
their own defaults (v-prediction, sigmoid schedule); it trains with Adam at lr 2e-4, batch 32, and
ema-pytorch's EMA of decay 0.995 updated every 10 steps, as its own Trainer does.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import geodiff
import geodiff.recipe
from geodiff import geostats
from geodiff.diffusion import NoiseSchedule
from geodiff.diffusion.respace import sampled_timesteps
from geodiff.diffusion.samplers import network_evaluations
from geodiff.diffusion.train import TrainConfig, Trainer, init_seed
from geodiff.diffusion.unet import UNet
from geodiff.metrics import evaluate, floors, train_extractor
from geodiff.model import DiffusionModel, load_model
from geodiff.scaling import ScaleCondition, Scaler
from geodiff.tiling import TileGrid, nodata_filter, select

DATA = Path(os.environ.get("GEODIFF_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
TILE, HELD_OUT, SAMPLES, FEATURES, DRAWS = 32, 300, 128, 64, 5
BY_SCENE = {"mexico"}  # overlapping tiles of 30 interferograms: hold out whole interferograms


# -- recipes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How geodiff trains and samples: the levers of issue 10, one named set at a time.

    Recipes that differ only in how they sample (``sampler``, ``timestep_spacing``,
    ``renormalise``) share one trained model in a run, so a sampling lever is measured on the
    very same weights.
    """

    preset: str = "small"
    schedule: str = geodiff.recipe.SCHEDULE
    prediction: str = geodiff.recipe.PREDICTION
    learn_sigma: bool = geodiff.recipe.LEARN_SIGMA
    loss: str = "mse"
    min_snr_gamma: float | None = None
    batch_size: int = 16
    lr: float = 2e-4
    warmup_steps: int = 0
    ema_decay: float = 0.9999
    sampler: str = geodiff.recipe.SAMPLER
    timestep_spacing: str = geodiff.recipe.TIMESTEP_SPACING
    renormalise: bool = False
    network: tuple = ()  # UNet constructor overrides of the preset, as (name, value) pairs
    scale_condition: bool = False  # the network told each tile's scale (geodiff.scaling.condition)

    def training(self) -> Recipe:
        """The recipe with its sampling levers reset: equal for recipes that train alike."""
        return replace(self, sampler="ddim", timestep_spacing="trailing", renormalise=False)


RECIPES = {
    "defaults": Recipe(),  # geodiff.recipe's: what fit and sample do unless told otherwise
    # improved DDPM's recipe, fit's defaults before issue 10
    "iddpm": Recipe(schedule="cosine", prediction="eps", learn_sigma=True, loss="hybrid", sampler="ddim"),
}
#: One lever each, appended to a recipe's name: "defaults+3m+karras+renorm".
MODIFIERS = {
    "eps": {"prediction": "eps"},
    "x0": {"prediction": "x0"},
    "ddim": {"sampler": "ddim"},
    "2m": {"sampler": "dpmsolver++"},
    "3m": {"sampler": "dpmsolver++3m"},
    "unipc": {"sampler": "unipc"},
    "karras": {"timestep_spacing": "karras"},
    "logsnr": {"timestep_spacing": "logsnr"},
    "linspace": {"timestep_spacing": "linspace"},
    "renorm": {"renormalise": True},
    "scale": {"scale_condition": True},
    "minsnr": {"min_snr_gamma": 5.0},
    "lr5e-4": {"lr": 5e-4, "warmup_steps": 50},
    "batch32": {"batch_size": 32},
    "ema0.999": {"ema_decay": 0.999},
    "heun": {"sampler": "heun"},
    "wide": {"network": (("base_channels", 48),)},  # 5.3 M parameters against 2.4 M
    "attn16": {"network": (("attention_resolutions", (2, 4)),)},  # attention at 16 and 8 pixels
}


def parse_recipe(name: str) -> Recipe:
    """The recipe called ``name``: a base recipe and ``+``-separated modifiers."""
    base, *levers = name.split("+")
    if base not in RECIPES or any(lever not in MODIFIERS for lever in levers):
        raise argparse.ArgumentTypeError(f"unknown recipe {name!r}: a base of {sorted(RECIPES)} and "
                                         f"+modifiers of {sorted(MODIFIERS)}")
    out = RECIPES[base]
    for lever in levers:
        change = dict(MODIFIERS[lever])
        if "network" in change:  # network levers add up
            change["network"] = tuple(sorted({**dict(out.network), **dict(change["network"])}.items()))
        out = replace(out, **change)
    return out


# -- data ------------------------------------------------------------------------------------


def _tiles(scene: xr.DataArray, overlap: int) -> xr.DataArray:
    grid = TileGrid.from_scene(scene, TILE, overlap)
    stack = grid.stack(scene)
    return select(stack, nodata_filter(stack, 0.0)).compute().drop_vars(["row", "col"], errors="ignore")


def load_product(name: str) -> xr.DataArray:
    """All complete (nodata-free) 32 x 32 tiles of a product, ``(tile, y, x)`` in physical units,
    with the index of the scene each tile comes from as coordinate ``scene``."""
    if name == "opera":
        paths = sorted(glob.glob(str(DATA / "sar" / "opera_rtc_s1_santa_barbara" / "*" / "*_VV.tif")))
        scenes = [10 * np.log10(s.where(s > 0)) for s in (geodiff.open_scene(p, chunks=None) for p in paths)]
        tiles = [_tiles(s.assign_attrs(units="dB"), 0) for s in scenes]
    elif name == "mexico":
        paths = sorted(glob.glob(str(DATA / "insar" / "mexico_city_cropA" / "*_eqa_unw.tif")))
        tiles = [_tiles(geodiff.open_scene(p, chunks=None), 16) for p in paths]
    elif name == "campi":
        tiles = [_tiles(geodiff.open_scene(DATA / "insar" / "campi_flegrei" / "vel.tif", chunks=None), 24)]
    else:
        raise SystemExit(f"unknown product {name!r}")
    units = tiles[0].attrs.get("units")
    scene = np.concatenate([np.full(t.sizes["tile"], i) for i, t in enumerate(tiles)])
    stacked = xr.concat([t.drop_vars("spatial_ref", errors="ignore") for t in tiles], dim="tile")
    return stacked.assign_coords(tile=np.arange(stacked.sizes["tile"]), scene=("tile", scene)).assign_attrs(units=units)


def split(tiles: xr.DataArray, seed: int, by_scene: bool) -> tuple[xr.DataArray, xr.DataArray]:
    """Training tiles and held-out real tiles (at most HELD_OUT, and a fifth of a small product).

    ``by_scene`` holds out whole scenes (for overlapping tiles, which would otherwise put parts
    of a held-out tile in training); otherwise tiles are held out at random.
    """
    rng = np.random.default_rng(seed)
    held = min(HELD_OUT, tiles.sizes["tile"] // 5)
    if by_scene:
        scenes = tiles["scene"].values
        out, chosen = np.zeros(len(scenes), bool), 0
        for s in rng.permutation(np.unique(scenes)):
            if chosen >= held:
                break
            out |= scenes == s
            chosen += int((scenes == s).sum())
        return tiles.isel(tile=np.flatnonzero(~out)), tiles.isel(tile=np.flatnonzero(out))
    order = rng.permutation(tiles.sizes["tile"])
    return tiles.isel(tile=order[held:]), tiles.isel(tile=order[:held])


# -- engines ---------------------------------------------------------------------------------


def train_geodiff(train: xr.DataArray, recipe: Recipe, budget: float, seed: int,
                  steps: int | None = None) -> DiffusionModel:
    """A model trained for ``budget`` seconds, or for exactly ``steps`` optimizer steps; its
    ``summary`` holds the steps taken and the training seconds."""
    scaler = Scaler()
    coefficients = scaler.fit(train)
    data = torch.from_numpy(scaler.transform(train, coefficients).values[:, None].astype(np.float32))
    condition = ScaleCondition.fit(coefficients.scale) if recipe.scale_condition else None
    net = UNet.from_preset(recipe.preset, 1, learn_sigma=recipe.learn_sigma, seed=init_seed(seed),
                           **dict(recipe.network), **({"cond_channels": 1} if condition else {}))
    config = TrainConfig(train_steps=steps or 10**9, max_seconds=None if steps else budget, batch_size=recipe.batch_size, lr=recipe.lr,
                         warmup_steps=recipe.warmup_steps, prediction=recipe.prediction,
                         learn_sigma=recipe.learn_sigma, loss=recipe.loss, min_snr_gamma=recipe.min_snr_gamma,
                         ema_decay=recipe.ema_decay, seed=seed, progress=False, val_fraction=0.0)
    trainer = Trainer(net, NoiseSchedule(recipe.schedule, 1000), config, device="cpu")
    start = time.monotonic()
    trainer.fit(data, cond=None if condition is None else torch.from_numpy(condition.image(coefficients.scale)))
    seconds = time.monotonic() - start
    model = DiffusionModel(network=trainer.ema_model().eval(), schedule=trainer.schedule, scaler=scaler,
                           coefficients=coefficients, tile=(TILE, TILE), units=train.attrs.get("units"),
                           prediction=recipe.prediction)
    model.summary = {"train_steps": trainer.step, "seconds": round(seconds, 1),
                     "scale_condition": None if condition is None else condition.to_config()}
    return model


def cached_training(cache: Path | None, product: str, train: xr.DataArray, recipe: Recipe, budget: float,
                    seed: int, steps: int | None = None) -> DiffusionModel:
    """:func:`train_geodiff`, or the model a run with the same training tiles, training levers,
    budget (or steps) and seed saved in ``cache``: sampling levers can then be tried on the same
    weights."""
    if cache is None:
        return train_geodiff(train, recipe, budget, seed, steps)
    tiles = train["tile"].values.tolist()  # the split: a model is reused only on the same training tiles
    length = budget if steps is None else f"{steps} steps"
    key = hashlib.sha256(json.dumps([product, tiles, vars(recipe.training()), length, seed]).encode()).hexdigest()[:16]
    path = cache / f"{product}-{key}"
    if (path / "model.json").is_file():
        return load_model(path, device="cpu")
    model = train_geodiff(train, recipe, budget, seed, steps)
    model.save(path)
    return model


def sampler_steps(model: DiffusionModel, recipe: Recipe, evals: int) -> int:
    """The most sampler steps whose network evaluations stay within ``evals`` (Heun's cost two)."""
    abar = model.schedule.alphas_cumprod
    for steps in range(evals, 0, -1):
        kept = sampled_timesteps(abar.tolist(), recipe.timestep_spacing, steps)
        if network_evaluations(recipe.sampler, abar[kept].tolist()) <= evals:
            return steps
    raise ValueError(f"{recipe.sampler} cannot sample in {evals} evaluations")


def sample_geodiff(model: DiffusionModel, recipe: Recipe, evals: int, seed: int) -> xr.DataArray:
    steps = sampler_steps(model, recipe, evals)
    return model.sample_tiles(SAMPLES, sampler=recipe.sampler, sample_steps=steps, seed=seed, progress=False,
                              timestep_spacing=recipe.timestep_spacing, renormalise=recipe.renormalise)


def train_peer(train: xr.DataArray, budget: float, seed: int):
    # The sibling benchmark: run as a script, benchmarks/ is on sys.path.
    from ema_pytorch import EMA
    from engine import load_peer

    peer = load_peer()
    torch.manual_seed(seed)
    scaler = Scaler(feature_range=(0.0, 1.0))  # the peer normalises [0, 1] to [-1, 1] itself
    coefficients = scaler.fit(train)
    data = torch.from_numpy(scaler.transform(train, coefficients).values[:, None].astype(np.float32))
    unet = peer.Unet(dim=32, dim_mults=(1, 2, 4), channels=1)
    diffusion = peer.GaussianDiffusion(unet, image_size=TILE, timesteps=1000)
    # The peer's own Trainer keeps this EMA (copies until step 100, then warms its decay up).
    ema = EMA(diffusion, beta=0.995, update_every=10)
    opt = torch.optim.Adam(diffusion.parameters(), lr=2e-4)
    generator = torch.Generator().manual_seed(seed)
    steps, start = 0, time.monotonic()
    while time.monotonic() - start < budget:
        batch = data[torch.randint(len(data), (32,), generator=generator)]
        diffusion(batch).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        steps += 1
        ema.update()
    return ema.ema_model.eval(), scaler, coefficients, steps


def sample_peer(peer, evals: int, seed: int) -> xr.DataArray:
    diffusion, scaler, coefficients, _ = peer
    diffusion.sampling_timesteps, diffusion.is_ddim_sampling, diffusion.ddim_sampling_eta = evals, True, 0.0
    torch.manual_seed(seed)
    with torch.inference_mode():
        z = diffusion.sample(batch_size=SAMPLES)[:, 0].numpy()
    tiles = xr.DataArray(z, dims=("sample", "y", "x"))
    return scaler.inverse(tiles, coefficients.draw(SAMPLES, seed=seed), units=coefficients.units)


# -- metrics ---------------------------------------------------------------------------------


def _samples(tiles: xr.DataArray, units) -> xr.DataArray:
    """Tiles as plain ``(sample, y, x)`` pixel grids: lags in pixels for real and synthetic alike."""
    return xr.DataArray(tiles.values, dims=("sample", "y", "x"), attrs={"units": units})


def scores(real: xr.DataArray, synthetic: xr.DataArray, extractor, floor) -> dict[str, dict]:
    """Every figure of geodiff.metrics.evaluate (value and real-vs-real floor), by name."""
    units = real.attrs.get("units")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", geostats.SpacingWarning)  # pixel lags, on purpose
        result = evaluate(_samples(real, units), _samples(synthetic, units), extractor=extractor, floor=floor)
    return {r.name: {"value": r.value, "floor": [r.floor_min, r.floor_max], "goal": r.goal,
                     "within_floor": r.within_floor} for r in result.rows if r.goal is not None}


# -- the run ---------------------------------------------------------------------------------


def run_product(name: str, recipes: dict[str, Recipe], budget: float, evals: list[int], peer_evals: list[int],
                seed: int, cache: Path | None = None, steps: int | None = None) -> dict:
    tiles = load_product(name)
    train, real = split(tiles, seed, by_scene=name in BY_SCENE)
    print(f"\n{name}: {train.sizes['tile']} training tiles, {real.sizes['tile']} held out, "
          f"units {tiles.attrs.get('units')}, "
          + (f"{steps} optimizer steps per recipe" if steps else f"budget {budget:.0f} s per engine and recipe"))
    units, extractor = tiles.attrs.get("units"), None
    if min(SAMPLES, real.sizes["tile"]) > FEATURES:  # FID needs sets larger than the features
        extractor = train_extractor(_samples(train, units), dim=FEATURES, seed=seed, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", geostats.SpacingWarning)
        floor = floors(_samples(real, units), SAMPLES, extractor=extractor, seed=seed, draws=DRAWS,
                       reference=_samples(train, units))
    result = {"product": name, "train_tiles": train.sizes["tile"], "held_out": real.sizes["tile"], "rows": [],
              "steps": {}, "seconds": {}}
    # A generator that reproduced its training tiles exactly, rescaled with the coefficient draw
    # every synthetic set gets: the training tiles that draw resamples. Its figures show what the
    # draw alone costs; a draw of 128 can lie far in the tail of its distribution.
    drawn = train.isel(tile=Scaler().fit(train).draw_index(SAMPLES, seed=seed))
    result["rows"].append({"engine": "drawn training tiles", "sampler": "-", "evals": 0,
                           "scores": scores(real, drawn, extractor, floor)})
    trained: dict[Recipe, DiffusionModel] = {}
    for label, recipe in recipes.items():
        if recipe.training() not in trained:
            trained[recipe.training()] = cached_training(cache, name, train, recipe, budget, seed, steps)
        model = trained[recipe.training()]
        result["steps"][label] = model.summary["train_steps"]
        result["seconds"][label] = model.summary.get("seconds")
        for n in evals:
            result["rows"].append({"engine": label, "sampler": recipe.sampler, "evals": n,
                                   "scores": scores(real, sample_geodiff(model, recipe, n, seed), extractor,
                                                   floor)})
    if peer_evals:
        peer = train_peer(train, budget, seed)
        result["steps"]["peer"], result["seconds"]["peer"] = peer[3], budget
    for n in peer_evals:
        result["rows"].append({"engine": "peer", "sampler": "ddim", "evals": n,
                               "scores": scores(real, sample_peer(peer, n, seed), extractor, floor)})
    _print(result)
    return result


def _print(result: dict) -> None:
    """One column per (engine, evaluations), one row per figure; geodiff's ratio to the peer at
    the same evaluations in brackets; * marks a figure within its real-vs-real floor."""
    rows = result["rows"]
    peer = {r["evals"]: r["scores"] for r in rows if r["engine"] == "peer"}
    print("optimizer steps (training seconds): "
          + ", ".join(f"{k} {v} ({result['seconds'][k]} s)" for k, v in result["steps"].items()))
    heads = [f"{r['engine']} {r['evals']}" for r in rows]
    print(f"{'figure':32s} {'real floor':>17s} " + " ".join(f"{h:>22s}" for h in heads))
    for name, first in rows[0]["scores"].items():
        cells = []
        for r in rows:
            figure = r["scores"][name]
            cell = f"{figure['value']:.3f}{'*' if figure['within_floor'] else ' '}"
            other = peer.get(r["evals"], {}).get(name)
            if r["engine"] != "peer" and other and other["value"] and first["goal"] == "lower":
                cell += f" ({figure['value'] / other['value']:.2f}x)"
            cells.append(cell.rjust(22))
        lo, hi = first["floor"]
        print(f"{name:32s} {lo:8.3f}..{hi:<7.3f} " + " ".join(cells))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", type=float, default=60.0, help="training seconds per engine and product")
    p.add_argument("--products", nargs="+", default=["opera", "mexico", "campi"])
    p.add_argument("--recipes", nargs="+", default=["defaults"],
                   help="geodiff recipes: a base recipe and +modifiers (e.g. defaults+3m+karras)")
    p.add_argument("--sampler", help="geodiff sampler overriding the recipes'")
    p.add_argument("--evals", type=int, nargs="+", default=[10, 25, 50])
    p.add_argument("--peer-evals", type=int, nargs="*", default=[10, 25, 50, 100],
                   help="the peer's evaluations; none skips the peer (recipe trials)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--cache", type=Path, help="keep trained geodiff models here and reuse them in later runs")
    p.add_argument("--train-steps", type=int,
                   help="train geodiff for exactly this many optimizer steps instead of --budget seconds: "
                        "recipe trials at equal steps, whatever the machine's load (the peer keeps --budget)")
    args = p.parse_args(argv)
    if not DATA.exists():
        raise SystemExit(f"real radar data not found at {DATA} (set GEODIFF_DATA)")
    torch.set_num_threads(args.threads)
    try:
        recipes = {name: parse_recipe(name) for name in args.recipes}
    except argparse.ArgumentTypeError as err:
        p.error(str(err))
    if args.sampler:
        recipes = {name: replace(r, sampler=args.sampler) for name, r in recipes.items()}
    for name, recipe in recipes.items():
        print(f"recipe {name}: {recipe}")
    print(f"{args.threads} thread(s)")
    results = [run_product(name, recipes, args.budget, args.evals, args.peer_evals, args.seed, args.cache,
                           args.train_steps) for name in args.products]
    if args.json:
        args.json.write_text(json.dumps({"recipes": {k: vars(v) for k, v in recipes.items()}, "budget": args.budget,
                                         "steps": args.train_steps,
                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
