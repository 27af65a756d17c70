"""Samplers: small functions over (denoiser, x, schedule), one algorithm each.

Six solvers and the Denoiser they share in one module (about 400 lines): each solver is a short
function, and what they share (the denoiser, the step report, the dispatch) would otherwise be
imported back and forth.

Every sampler walks a (respaced) :class:`NoiseSchedule` from its last index down to 0 and ends on
the data (abar = 1). The schedule is data; the solver is the function. :func:`sample` is the
public entry point: it picks the timesteps (:mod:`geodiff.diffusion.respace`), respaces the trained
schedule, draws the start noise and hands a :class:`Denoiser` to the chosen sampler.

- ``"ddpm"``: ancestral sampling, Ho et al. (2020) Algorithm 2, on any respaced schedule, with the
  learned-range variance of Nichol & Dhariwal (2021) when the model outputs it.
- ``"ddim"``: Song, Meng, Ermon (2021), *Denoising Diffusion Implicit Models*, eq. 12 with eta.
- ``"dpmsolver++"`` (2M) and ``"dpmsolver++3m"``: Lu et al. (2022), *DPM-Solver++: Fast Solver for
  Guided Sampling of Diffusion Probabilistic Models*, Algorithm 2 (multistep, data prediction).
- ``"unipc"``: Zhao et al. (2023), UniPC-bh2 of order 2 (predictor-corrector, data prediction).
- ``"heun"``: Karras et al. (2022), EDM Algorithm 1 (gamma = 0), the second-order Heun solver of
  the probability-flow ODE in the noise level sigma; two network evaluations per step.

All but ``"heun"`` evaluate the network once per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch
from tqdm.auto import tqdm, trange

from geodiff.names import SAMPLERS

from .conditions import Conditions
from .noise import draw_noise
from .respace import SIGMA_MAX, sampled_timesteps
from .schedule import NoiseSchedule

__all__ = ["SAMPLERS", "Denoised", "Denoiser", "check_resampling", "network_evaluations", "resampling_walk", "sample",
           "sample_ddim", "sample_ddpm", "sample_dpmpp", "sample_heun", "sample_unipc", "walked_steps"]


@dataclass
class Denoised:
    """The model's view of x_t at one step: x_0 and eps estimates, and the learned variance's
    interpolation value (improved DDPM's v, in [-1, 1]; None when the variance is fixed), named
    apart from ``prediction="v"``."""

    x0: torch.Tensor
    eps: torch.Tensor
    variance_range: torch.Tensor | None


class Denoiser:
    """Wraps ``model_fn(x, t)`` for a respaced schedule: index i of the respaced schedule is
    trained timestep ``timestep_map[i]``. Returns x_0 (clipped to ``clip`` when given, eps then
    recomputed from the clipped x_0 as improved DDPM does) and eps for any parameterisation."""

    def __init__(self, model_fn: Callable, schedule: NoiseSchedule, timestep_map: torch.Tensor, *,
                 prediction: str = "eps", learn_sigma: bool | None = None, clip=None,
                 conditions: Conditions | None = None, record: list | None = None):
        if prediction not in ("eps", "x0", "v"):
            raise ValueError(f"prediction must be 'eps', 'x0' or 'v', got {prediction!r}")
        self.model_fn = model_fn
        self.schedule = schedule
        self.timestep_map = [int(t) for t in timestep_map]
        self.prediction = prediction
        self.learn_sigma = learn_sigma
        self.conditions = conditions or Conditions()
        self.record, self.calls = record, 0
        if clip is None or isinstance(clip, (tuple, list)):
            self.clip = clip
        else:
            self.clip = (-float(clip), float(clip))

    def __call__(self, x: torch.Tensor, i: int) -> Denoised:
        batch, channels = x.shape[0], x.shape[1]
        if self.conditions.states is not None:
            x = self.conditions.state_at(self.calls, x)
        if self.record is not None:
            self.record.append(x)
        self.calls += 1
        t = torch.full((batch,), self.timestep_map[i], dtype=torch.long, device=x.device)
        out = self.model_fn(x, t, **self.conditions.network_kwargs())
        if self.conditions.guidance:
            # Guidance moves the prediction only; a learned variance stays the conditional one.
            free = self.model_fn(x, t, **self.conditions.network_kwargs(unconditional=True))
            w = self.conditions.guidance
            out = torch.cat([free[:, :channels] + (1 + w) * (out[:, :channels] - free[:, :channels]),
                             out[:, channels:]], dim=1)
        learned = self.learn_sigma if self.learn_sigma is not None else out.shape[1] == 2 * channels
        variance_range = None
        if learned:
            if out.shape[1] != 2 * channels:
                raise ValueError(f"learn_sigma=True needs {2 * channels} output channels, the model gave {out.shape[1]}")
            out, variance_range = out[:, :channels], out[:, channels:]
        elif out.shape != x.shape:
            raise ValueError(f"model output shape {tuple(out.shape)} does not match x {tuple(x.shape)}")
        out = out.to(x.dtype)
        x0 = self.schedule.predict_x0(x, i, out, self.prediction)
        if self.clip is None and self.conditions.mask is None and self.conditions.project is None:
            return Denoised(x0, self.schedule.predict_eps(x, i, out, self.prediction), variance_range)
        if self.clip is not None:
            x0 = x0.clamp(*self.clip)
        x0 = self.conditions.impose(x0)
        eps = self.schedule.predict_eps(x, i, x0, "x0")
        return Denoised(x0, eps, variance_range)


def _report(callback, step: int, i: int, denoiser: Denoiser, x, out: Denoised) -> None:
    if callback is not None:
        callback({"step": step, "i": i, "t": denoiser.timestep_map[i], "x": x, "x0": out.x0})


def resampling_walk(steps: int, resampling: tuple[int, int] | None = None) -> list:
    """The moves of a one-step sampler over a respaced schedule of ``steps`` indices: an int
    ``i`` is the step from index ``i`` to ``i - 1`` (-1 being the data), a pair ``(low, high)``
    re-noises the state at index ``low`` forward to index ``high``.

    Without ``resampling`` the walk is ``steps - 1, ..., 0``. With ``resampling=(length,
    count)``, RePaint's resampling (Lugmayr et al. 2022, sec. 4.2): every ``length`` steps the
    state jumps back ``length`` steps by forward noise until that stretch has been walked
    ``count`` times, so that the generated pixels get ``count`` passes to agree with the known
    ones. The last step, onto the data, is never repeated.
    """
    length, count = resampling or (steps, 1)
    moves, level, jumped = [], steps - 1, {}
    while level >= 0:
        moves.append(level)
        level -= 1
        if level >= 0 and (steps - 1 - level) % length == 0 and jumped.get(level, 0) < count - 1:
            jumped[level] = jumped.get(level, 0) + 1
            moves.append((level, level + length))
            level += length
    return moves


def walked_steps(steps: int, resampling: tuple[int, int] | None = None) -> int:
    """How many sampler steps :func:`resampling_walk` takes (its moves that are not jumps)."""
    return sum(not isinstance(move, tuple) for move in resampling_walk(steps, resampling))


def check_resampling(sampler: str, resampling) -> None:
    """Raise ValueError unless ``resampling`` is None or a ``(length, count)`` pair of positive
    integers for a one-step sampler (a multistep solver's history does not survive a jump)."""
    if resampling is None:
        return
    if (not isinstance(resampling, (tuple, list)) or len(resampling) != 2
            or not all(isinstance(v, Integral) and v >= 1 for v in resampling)):
        raise ValueError(f"resampling is a (jump length, count) pair of positive integers, got {resampling!r}")
    if sampler not in ("ddpm", "ddim"):
        raise ValueError(f"resampling needs a one-step sampler, 'ddpm' or 'ddim', not {sampler!r}")


def _renoise(x: torch.Tensor, schedule: NoiseSchedule, low: int, high: int, generator, noise) -> torch.Tensor:
    """A draw of q(x_high | x_low) on a respaced schedule (index -1: the data)."""
    abar_low = 1.0 if low < 0 else float(schedule.alphas_cumprod[low])
    ratio = float(schedule.alphas_cumprod[high]) / abar_low
    z = draw_noise(noise, x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return math.sqrt(ratio) * x + math.sqrt(1 - ratio) * z


def sample_ddpm(denoiser: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, *, variance: str = "small",
                generator=None, noise=None, callback=None, disable: bool = True,
                resampling: tuple[int, int] | None = None) -> torch.Tensor:
    """Ancestral sampling, Ho et al. (2020) Algorithm 2, on a (respaced) schedule.

    x_{t-1} = mu~_t(x_0, x_t) + Sigma^(1/2) z with the posterior mean of DDPM eq. 7. Sigma is the
    learned range of improved DDPM eq. 15 when the model outputs v, else "small" (beta~_t) or
    "large" (beta_t), DDPM sec. 3.2. No noise at the last step. ``resampling``: see
    :func:`resampling_walk`.
    """
    if variance not in ("small", "large"):
        raise ValueError(f"variance must be 'small' or 'large', got {variance!r}")
    for step, i in enumerate(tqdm(resampling_walk(schedule.timesteps, resampling), disable=disable)):
        if isinstance(i, tuple):
            x = _renoise(x, schedule, *i, generator, noise)
            continue
        out = denoiser(x, i)
        mean, var, _ = schedule.q_posterior_mean_variance(out.x0, x, i)
        x_prev = mean
        if i > 0:
            if out.variance_range is not None:
                std = torch.exp(0.5 * schedule.learned_log_variance(out.variance_range, i))
            else:
                std = math.sqrt(float(schedule.betas[i]) if variance == "large" else var)
            z = draw_noise(noise, x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x_prev = mean + std * z
        _report(callback, step, i, denoiser, x, out)
        x = x_prev
    return x


def sample_ddim(denoiser: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, *, eta: float = 0.0,
                generator=None, noise=None, callback=None, disable: bool = True,
                resampling: tuple[int, int] | None = None) -> torch.Tensor:
    """DDIM, Song, Meng, Ermon (2021) eq. 12, on a (respaced) schedule.

    x_{t-1} = sqrt(abar_prev) x_0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z with
    sigma = eta sqrt((1 - abar_prev) / (1 - abar)) sqrt(1 - abar / abar_prev) (eq. 16): eta = 0
    is deterministic, eta = 1 is DDPM's ancestral step with the posterior variance.
    ``resampling``: see :func:`resampling_walk`.
    """
    abar = schedule.alphas_cumprod.tolist()
    abar_prev = schedule.alphas_cumprod_prev.tolist()
    for step, i in enumerate(tqdm(resampling_walk(schedule.timesteps, resampling), disable=disable)):
        if isinstance(i, tuple):
            x = _renoise(x, schedule, *i, generator, noise)
            continue
        out = denoiser(x, i)
        a, a_prev = abar[i], abar_prev[i]
        sigma = eta * math.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
        x_prev = math.sqrt(a_prev) * out.x0 + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * out.eps
        if sigma > 0:
            z = draw_noise(noise, x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x_prev = x_prev + sigma * z
        _report(callback, step, i, denoiser, x, out)
        x = x_prev
    return x


def _solver_tables(schedule: NoiseSchedule) -> tuple[list[float], list[float], list[float]]:
    """alpha = sqrt(abar), sigma = sqrt(1 - abar) and lambda = log(alpha / sigma) per index, as
    Python floats: the exponential-integrator solvers step in lambda."""
    abar = schedule.alphas_cumprod.tolist()
    alpha = [math.sqrt(a) for a in abar]
    sigma = [math.sqrt(1 - a) for a in abar]
    return alpha, sigma, [math.log(al) - math.log(si) for al, si in zip(alpha, sigma)]


def sample_dpmpp(denoiser: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, *, order: int = 2,
                 callback=None, disable: bool = True) -> torch.Tensor:
    """DPM-Solver++(2M) / (3M), Lu et al. (2022) Algorithm 2 (data prediction, multistep).

    With alpha = sqrt(abar), sigma = sqrt(1 - abar), lambda = log(alpha / sigma) and h the step in
    lambda, the first-order step is x' = (sigma'/sigma) x - alpha' (e^-h - 1) D with D = x_0; the
    multistep corrections D of orders 2 and 3 reuse the previous x_0 estimates (the 3M form is
    the one of the DPM-Solver reference code and diffusers). The first steps start at order 1;
    the last step (to sigma = 0, where lambda = inf) is first order, i.e. x = x_0, and with fewer
    than 15 steps the one before it is at most second order ("lower_order_final").
    """
    if order not in (2, 3):
        raise ValueError(f"DPM-Solver++ order must be 2 or 3, got {order}")
    n = schedule.timesteps
    alpha, sigma, lam = _solver_tables(schedule)
    history: list[torch.Tensor] = []  # x_0 estimates of the last steps, newest last
    for step, i in enumerate(trange(n - 1, -1, -1, disable=disable)):
        out = denoiser(x, i)
        history = (history + [out.x0])[-order:]
        if i == 0:  # final step to sigma = 0: e^-h = 0, x = x_0
            x_next = out.x0
        else:
            k = min(len(history), 2 if (i == 1 and n < 15) else order)
            h = lam[i - 1] - lam[i]
            em1 = math.expm1(-h)  # e^-h - 1
            m0 = history[-1]
            x_next = sigma[i - 1] / sigma[i] * x - alpha[i - 1] * em1 * m0  # first order (DDIM)
            if k >= 2:
                r0 = (lam[i] - lam[i + 1]) / h
                D1_0 = (m0 - history[-2]) / r0
            if k == 2:
                x_next = x_next - 0.5 * alpha[i - 1] * em1 * D1_0
            elif k == 3:
                r1 = (lam[i + 1] - lam[i + 2]) / h
                D1_1 = (history[-2] - history[-3]) / r1
                D1 = D1_0 + r0 / (r0 + r1) * (D1_0 - D1_1)
                D2 = (D1_0 - D1_1) / (r0 + r1)
                x_next = x_next + alpha[i - 1] * (em1 / h + 1.0) * D1 - alpha[i - 1] * ((em1 + h) / h**2 - 0.5) * D2
        _report(callback, step, i, denoiser, x, out)
        x = x_next
    return x


def _unipc_coefficients(h: float, rks: list[float], order: int) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    """``h_phi_1``, ``B(h)`` and the order conditions ``R c = b`` of UniPC-bh2 (Zhao et al. 2023,
    eq. 8 and Algorithm 2, data prediction) for a step of size h in lambda with ratios rks."""
    hh = -h
    h_phi_1 = math.expm1(hh)  # e^-h - 1
    b_h = h_phi_1  # the "bh2" choice B(h) = e^-h - 1
    h_phi_k, factorial, rows, b = h_phi_1 / hh - 1.0, 1, [], []
    for k in range(1, order + 1):
        rows.append([r ** (k - 1) for r in rks])
        b.append(h_phi_k * factorial / b_h)
        factorial *= k + 1
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    return h_phi_1, b_h, torch.tensor(rows, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)


def sample_unipc(denoiser: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, *, order: int = 2,
                 callback=None, disable: bool = True) -> torch.Tensor:
    """UniPC, Zhao, Bai, Rao, Zhou, Lu (2023), *UniPC: A Unified Predictor-Corrector Framework
    for Fast Sampling of Diffusion Models*: the multistep UniP-p predictor with the UniC
    corrector, data prediction, B(h) = e^-h - 1 ("bh2").

    Each step predicts x at the next noise level from the last ``order`` x_0 estimates; once the
    network has been evaluated there, UniC corrects that x with the new estimate before the next
    step, at no extra evaluation (the estimate itself is not recomputed). As in the reference
    code the first steps warm up from order 1, the last steps lower the order so that the final
    one is first order, and the final step to sigma = 0 returns the last x_0 estimate.
    """
    if order not in (2, 3):
        raise ValueError(f"UniPC order must be 2 or 3, got {order}")
    n = schedule.timesteps
    alpha, sigma, lam = _solver_tables(schedule)
    history: list[torch.Tensor] = []  # x_0 estimates, newest last
    last_x, last_order = None, 0
    for step, i in enumerate(trange(n - 1, -1, -1, disable=disable)):
        out = denoiser(x, i)
        if last_x is not None:  # UniC: correct the step that led from index i + 1 to x
            x = _unipc_update(last_x, history, out.x0, i + 1, i, last_order, alpha, sigma, lam)
        history = (history + [out.x0])[-order:]
        _report(callback, step, i, denoiser, x, out)
        if i == 0:
            return out.x0
        last_order = min(order, i + 1, len(history))  # lower order at the end and while warming up
        last_x = x
        x = _unipc_update(x, history, None, i, i - 1, last_order, alpha, sigma, lam)
    return x


def _unipc_update(x, history, model_t, s0: int, t: int, order: int, alpha, sigma, lam):
    """One UniP step from index s0 to t (``model_t`` None) or its UniC correction with the
    estimate ``model_t`` at t. ``history[-1]`` is the x_0 estimate at s0, the ones before it at
    s0 + 1, s0 + 2."""
    m0 = history[-1]
    h = lam[t] - lam[s0]
    rks, d1s = [], []
    for k in range(1, order):
        rk = (lam[s0 + k] - lam[s0]) / h
        rks.append(rk)
        d1s.append((history[-1 - k] - m0) / rk)
    h_phi_1, b_h, rows, b = _unipc_coefficients(h, [*rks, 1.0], order)
    x_next = sigma[t] / sigma[s0] * x - alpha[t] * h_phi_1 * m0
    if model_t is None:  # predictor
        if not d1s:
            return x_next
        rhos = [0.5] if order == 2 else torch.linalg.solve(rows[:-1, :-1], b[:-1]).tolist()
        return x_next - alpha[t] * b_h * sum(r * d for r, d in zip(rhos, d1s))
    rhos = [0.5] if order == 1 else torch.linalg.solve(rows, b).tolist()  # corrector
    correction = sum((r * d for r, d in zip(rhos[:-1], d1s)), torch.zeros_like(x)) + rhos[-1] * (model_t - m0)
    return x_next - alpha[t] * b_h * correction


def sample_heun(denoiser: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, *, callback=None,
                disable: bool = True) -> torch.Tensor:
    """Heun's method on the probability-flow ODE, Karras, Aittala, Aila, Laine (2022), *Elucidating
    the Design Space of Diffusion-Based Generative Models*, Algorithm 1 with gamma = 0.

    In EDM's coordinates y = x / alpha and sigma_EDM = sigma / alpha the ODE is dy/dsigma =
    (y - D(y)) / sigma with D the x_0 estimate. Each step from index i to i - 1 takes an Euler
    step (DDIM's), evaluates D there and averages the two slopes. Steps that start above
    :data:`~geodiff.diffusion.respace.SIGMA_MAX` stay Euler steps: there D is the data mean to
    within 1 / sigma^2, for which Euler's step is exact, while a trapezoid over a step that spans
    orders of magnitude of sigma (the trained schedules reach 1e3-1e4) is not. The last step, to
    sigma = 0, is Euler's and returns D. :func:`network_evaluations` counts the evaluations.
    """
    alpha, sigma, _ = _solver_tables(schedule)
    s = [si / al for si, al in zip(sigma, alpha)]
    for step, i in enumerate(trange(schedule.timesteps - 1, -1, -1, disable=disable)):
        out = denoiser(x, i)
        _report(callback, step, i, denoiser, x, out)
        if i == 0:
            return out.x0
        y = x / alpha[i]
        slope = (y - out.x0) / s[i]
        y_next = y + (s[i - 1] - s[i]) * slope
        if s[i] <= SIGMA_MAX:
            corrected = (y_next - denoiser(alpha[i - 1] * y_next, i - 1).x0) / s[i - 1]
            y_next = y + (s[i - 1] - s[i]) * 0.5 * (slope + corrected)
        x = alpha[i - 1] * y_next
    return x




def network_evaluations(sampler: str, alphas_cumprod: Sequence[float],
                        resampling: tuple[int, int] | None = None) -> int:
    """How many times ``sampler`` evaluates the network on the timesteps whose abar are given:
    once per timestep (and per repeated step with ``resampling``), and for "heun" once more per
    step that starts at or below SIGMA_MAX."""
    if resampling is not None:
        return walked_steps(len(alphas_cumprod), resampling)
    if sampler != "heun":
        return len(alphas_cumprod)
    corrected = sum(1 for a in alphas_cumprod[1:] if math.sqrt((1 - a) / a) <= SIGMA_MAX)
    return len(alphas_cumprod) + corrected


def _model_device(model_fn) -> torch.device:
    params = getattr(model_fn, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device("cpu")


def _generators(seed, batch: int, device: torch.device):
    """None, one generator for the batch (an int seed) or one per sample (a sequence of seeds)."""
    if seed is None:
        return None
    if isinstance(seed, Integral):
        return torch.Generator(device).manual_seed(int(seed))
    seeds = [int(s) for s in seed]
    if len(seeds) != batch:
        raise ValueError(f"{len(seeds)} seeds for a batch of {batch} samples: give one seed per sample or an int")
    return [torch.Generator(device).manual_seed(s) for s in seeds]


def sample(model_fn: Callable, schedule: NoiseSchedule, shape, sampler: str = "ddim", sample_steps: int | None = 50,
           timestep_spacing="trailing", prediction: str = "eps", eta: float = 0.0, x_T: torch.Tensor | None = None,
           seed: int | Sequence[int] | None = 0, clip=None, progress: bool = False, learn_sigma: bool | None = None,
           noise=None, device=None, dtype: torch.dtype = torch.float32, callback: Callable | None = None,
           variance: str = "small", conditions: Conditions | None = None,
           record: list | None = None, resampling: tuple[int, int] | None = None) -> torch.Tensor:
    """Draw ``shape`` = (B, C, H, W) samples from a diffusion model trained on ``schedule``.

    ``model_fn(x, t)`` gets a batch and a LongTensor of trained timesteps (0..T-1) and returns the
    ``prediction`` ("eps", "x0" or "v"), with 2C channels when the variance is learned (first C
    the prediction, last C the learned variance range in [-1, 1]; ``learn_sigma=None`` detects
    this from the channel count). Only "ddpm" uses the variance; otherwise it falls back to
    ``variance`` "small" or "large".

    ``sampler``: "ddpm", "ddim" (with ``eta``), "dpmsolver++" (2M), "dpmsolver++3m", "unipc" or
    "heun" (which evaluates the network up to ``2 sample_steps - 1`` times, :func:`network_evaluations`).
    ``sample_steps`` and ``timestep_spacing`` choose the timesteps: "trailing", "leading", "linspace",
    the noise-level spacings "karras" and "logsnr" (see :mod:`geodiff.diffusion.respace`), an
    improved-diffusion string ("250", "10,15,20", "ddimN"; ``sample_steps`` ignored) or an explicit list.
    ``x_T`` fixes the start noise; ``seed`` seeds a generator on the device that draws the start
    noise and every stochastic step (None: torch's global RNG). A sequence of B seeds gives each
    sample its own generator, so that a sample's start noise and step noise depend on its seed
    only, never on the batch it is drawn in. ``noise`` is the forward-noise
    :class:`~geodiff.diffusion.noise.NoiseSpec` the model was trained with (None: white).
    ``clip`` clamps each x_0 estimate to [-clip, clip] or to a (low, high) pair.
    ``callback(info)`` gets a dict with step, i, t, x and x0 at every step. ``conditions``
    (:class:`~geodiff.diffusion.conditions.Conditions`) holds known pixels to keep, a start
    timestep (the sampler then starts from the known values noised there, or taken as they are
    with ``noisy_start``), labels and a
    low-resolution image for the network; ``model_fn`` then takes ``y`` and ``cond`` keywords.
    ``record``, a list, receives the network's input at every call (the trajectory that
    ``Conditions.states`` replays). ``resampling=(length, count)`` walks every stretch of
    ``length`` steps ``count`` times, RePaint's resampling for known pixels
    (:func:`resampling_walk`; "ddpm" and "ddim" only).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    check_resampling(sampler, resampling)
    shape = tuple(int(s) for s in shape)
    if device is None:
        device = x_T.device if x_T is not None else _model_device(model_fn)
    device = torch.device(device)
    conditions = conditions or Conditions()
    conditions.check(shape, schedule.timesteps)
    kept = sampled_timesteps(schedule.alphas_cumprod.tolist(), timestep_spacing, sample_steps)
    if conditions.start is not None:
        kept = [t for t in kept if t <= conditions.start] or [int(conditions.start)]
    respaced, timestep_map = schedule.respace(kept)
    generator = _generators(seed, shape[0], device)
    if x_T is None:
        x = draw_noise(noise, shape, generator=generator, device=device, dtype=dtype)
    else:
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected {shape}")
        x = x_T.to(device=device, dtype=dtype)
    if conditions.known is not None:  # known pixels (every pixel for SDEdit) start at q(x_T | known)
        abar = float(schedule.alphas_cumprod[kept[-1]])
        scaled = math.sqrt(abar) * conditions.known.to(device=device, dtype=dtype)
        noised = scaled + math.sqrt(1 - abar) * x
        if conditions.start is None:
            x = conditions.impose_on(x, noised)
        else:
            x = conditions.impose_on(scaled, noised) if conditions.noisy_start else noised
    denoiser = Denoiser(model_fn, respaced, timestep_map, prediction=prediction, learn_sigma=learn_sigma, clip=clip,
                        conditions=conditions, record=record)
    common = {"callback": callback, "disable": not progress}
    with torch.no_grad():
        if sampler == "ddpm":
            return sample_ddpm(denoiser, x, respaced, variance=variance, generator=generator, noise=noise,
                               resampling=resampling, **common)
        if sampler == "ddim":
            return sample_ddim(denoiser, x, respaced, eta=eta, generator=generator, noise=noise,
                               resampling=resampling, **common)
        if sampler == "unipc":
            return sample_unipc(denoiser, x, respaced, **common)
        if sampler == "heun":
            return sample_heun(denoiser, x, respaced, **common)
        return sample_dpmpp(denoiser, x, respaced, order=3 if sampler == "dpmsolver++3m" else 2, **common)
