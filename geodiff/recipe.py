"""The recipe geodiff trains and samples with unless told otherwise.

Each value was chosen by ``benchmarks/fidelity.py`` on real radar tiles at an equal CPU budget;
docs/benchmarks.md records every trial, kept or not. Free of torch, so the CLI can show these
defaults without loading the engine.
"""

#: Noise schedule of training: a sigmoid in log-SNR (Jabri, Fleet, Chen 2022). Its terminal
#: SNR is ~3e-7, so no zero-terminal-SNR rescaling is needed.
SCHEDULE = "sigmoid"
#: What the network predicts: v = sqrt(abar) eps - sqrt(1 - abar) x_0 (Salimans & Ho 2022).
PREDICTION = "v"
#: Fixed variance and the plain MSE loss: learned variance (improved DDPM's hybrid loss) lost
#: on every figure at 10 to 50 evaluations.
LEARN_SIGMA = False

#: Sampler: DPM-Solver++ 2M, the best measured at the default 25 evaluations (3M equal, DDIM
#: behind). At 10 evaluations "unipc" is ahead of it on every product measured.
SAMPLER = "dpmsolver++"
#: Network evaluations per sample (``sample_steps``).
SAMPLE_STEPS = 25
#: Which trained timesteps the sampler visits (see geodiff.diffusion.respace). Trailing is best
#: at 25 evaluations; at 10, "karras" or "logsnr" give far better structure (semivariogram, tile
#: std, spectra) for a somewhat worse FID.
TIMESTEP_SPACING = "trailing"
