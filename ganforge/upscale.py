"""Super-resolution models for inference: a trained run's generator as an upscaling function (run tile by tile
with ganforge.tiling), optionally interpolated with its PSNR-oriented weights."""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


def interpolate_states(psnr: dict[str, torch.Tensor], gan: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) * PSNR weights + alpha * GAN weights (ESRGAN sec. 3.4); alpha 0 is the PSNR model."""
    if not 0.0 <= alpha <= 1.0:
        raise GanforgeError(f"--alpha must be in [0, 1], got {alpha}")
    if set(psnr) != set(gan) or any(psnr[k].shape != gan[k].shape for k in gan):
        raise GanforgeError("network interpolation needs two generators of the same architecture")
    return {k: torch.lerp(psnr[k].float(), gan[k].float(), alpha).to(gan[k].dtype) if gan[k].is_floating_point()
            else gan[k] for k in gan}


def load_upscaler(run, checkpoint: str = "last", device: str = "cpu", alpha: float | None = None,
                  psnr_run=None):
    """(upscale function on [-1, 1] (1, C, h, w) images, scale, channels) for a trained super-resolution run.

    With `alpha`, the generator is the interpolation (1 - alpha) * PSNR + alpha * this run's weights (ESRGAN network
    interpolation); the PSNR weights come from `psnr_run`, else from the run's `pretrained` option.
    """
    import ganforge
    from ganforge.api import generator_state
    from ganforge.families import having
    model = ganforge.load(run, checkpoint, device)
    device = model.device
    if not model.family.capabilities.upscale:
        raise GanforgeError(f"{run}: a {model.config.model.name} run, not a super-resolution model "
                            f"({', '.join(having('upscale'))})")
    generator = model.generator
    if alpha is not None:
        source = psnr_run or model.family.options.pretrained
        if source is None:
            raise GanforgeError(f"--alpha needs the PSNR-oriented weights: pass --psnr RUN (the run {run} was not "
                                "initialised from one with --opt pretrained=RUN)")
        psnr = {k: v.to(device) for k, v in generator_state(source).items()}
        generator.load_state_dict(interpolate_states(psnr, generator.state_dict(), alpha))
    generator.eval()

    def upscale(image: torch.Tensor) -> torch.Tensor:
        return generator(image.to(device)).float()

    return upscale, model.family.scale, model.family.info.channels
