"""Clean images marked on the fly: every training batch draws fresh watermarks (`ganforge.data.pairs.watermark`),
so a model never sees the same marks twice, and a share of the crops stays unmarked (A = B: pure negatives for a
mask, every pixel "clean").

Used by the restore family with `--opt marks=fresh`; the data folder is either a plain folder of clean images or a
paired A/B layout (the clean B images are used; the fixed A marks only show in the sample grids). Marks are drawn on
a window of at most MARK_WINDOW x MARK_WINDOW px around the crop (the whole image when it is smaller), sized to
that window as `make-pairs watermark` sizes them to the image: images of up to 256 px are marked exactly as
`make-pairs` marks them; on larger photos the marks are those of a 256 px image (text of roughly 25-85 px), not
scaled up with the photo (drawing marks on a whole large photo every batch would cost more than the training step).
Batches are reproducible from the batch seed (resume is bit-exact). Each batch also holds the marks' combined
opacity per pixel ("opacity", (N, 1, H, W) in [0, 1]: 0 where unmarked), the target of restore's opacity head.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data.image_files import list_images
from ganforge.data.paired import PAIRED_DIRS, PairedBatches, PairedImages, _read, crop_resolution
from ganforge.data.pairs import file_rng, watermark_with_mask
from ganforge.errors import GanforgeError
from ganforge.media import from_uint8

MARK_WINDOW = 256  # largest side marks are sized to (and drawn on) around a crop: 10 ms a 128 px window,
# 20 ms at 256 px (single-threaded), against about 200 ms of a training step at batch 4


def clean_folder(source: str) -> Path:
    """The folder of clean images of a data source: B/ of an A/B (or trainA/trainB) layout, else the folder."""
    root = Path(source).expanduser()
    if not root.is_dir():
        raise GanforgeError(f"--data {source}: marks=fresh needs a folder of clean images (or A/ and B/ pairs)")
    for _, b in PAIRED_DIRS:
        if (root / b).is_dir():
            return root / b
    return root


def mark(image: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(marked image, mask 0/1 of the changed pixels, the marks' combined opacity as uint8 (1, H, W)) for a uint8
    (C, H, W) image: `make-pairs watermark`'s marks."""
    array = image.permute(1, 2, 0).cpu().numpy()
    picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert("RGB")
    marked, opacity = watermark_with_mask(picture, rng)
    marked = np.asarray(marked)
    if image.shape[0] == 1:
        marked = np.asarray(Image.fromarray(marked).convert("L"))[..., None]
    out = torch.from_numpy(marked.copy()).permute(2, 0, 1).to(image.device)
    opacity = torch.from_numpy(np.asarray(opacity).copy())[None].to(image.device)
    return out, (out != image).any(0, keepdim=True), opacity


class MarkedImages(PairedImages):
    """Clean images (domain B) whose damaged versions (domain A) are drawn per batch; `a` holds one fixed marking
    per image (seed 0, by name) for sample grids and centre crops."""

    def __init__(self, clean: list[torch.Tensor], names: list[str], resolution: int, name: str,
                 clean_share: float = 0.0):
        fixed = [mark(image, file_rng(0, key))[0] for image, key in zip(clean, names)]
        super().__init__(fixed, clean, names, resolution, name=name, paired=True)
        self.clean_share = clean_share

    def batches(self, batch_size: int, device: torch.device, seed: int, flip: bool = False) -> "MarkedBatches":
        return MarkedBatches(self, batch_size, device, seed, flip)


def load_marked(source: str, resolution: int | None, channels: int | None, limit: int | None,
                clean_share: float = 0.0, crop_cap: int = 0) -> MarkedImages:
    """The clean images below `source` (see clean_folder) at their own size; resolution None: the largest power of
    two that fits them (crop_resolution), capped at `crop_cap` when that is set."""
    folder = clean_folder(source)
    files = list_images(folder)[:limit]
    if not files:
        raise GanforgeError(f"{folder}: no image files found (marks=fresh needs clean images)")
    chans = channels or 3
    images = [_read(path, chans) for path in files]
    names = [str(path.relative_to(folder).with_suffix("")) for path in files]
    if resolution is None:
        resolution = crop_resolution([min(image.shape[-2:]) for image in images])
        if crop_cap:
            resolution = min(resolution, crop_resolution([crop_cap]))
    return MarkedImages(images, names, resolution, name=source, clean_share=clean_share)


class MarkedBatches(PairedBatches):
    """Random crops of the clean images, each marked afresh (from the batch seed) unless drawn as a clean one."""

    def next(self) -> dict[str, torch.Tensor]:
        index, seed = self.take()
        rng = torch.Generator().manual_seed(seed)
        marks = np.random.default_rng(seed)
        r = self.data.resolution
        crops_a, crops_b, opacities = [], [], []
        for i in index.tolist():
            image = self.b[i]
            h, w = image.shape[-2:]
            wh, ww = min(h, MARK_WINDOW), min(w, MARK_WINDOW)  # the window the marks are sized to
            top = int(torch.randint(0, h - wh + 1, (1,), generator=rng))
            left = int(torch.randint(0, w - ww + 1, (1,), generator=rng))
            window = image[:, top:top + wh, left:left + ww]
            y, x, flip = self._place(window, rng)
            clean = window[:, y:y + r, x:x + r]
            if marks.random() < self.data.clean_share:
                damaged, opacity = clean, torch.zeros_like(clean[:1])
            else:
                damaged, _, opacity = mark(window, marks)
                damaged, opacity = damaged[:, y:y + r, x:x + r], opacity[:, y:y + r, x:x + r]
            crops_a.append(damaged.flip(-1) if flip else damaged)
            crops_b.append(clean.flip(-1) if flip else clean)
            opacities.append(opacity.flip(-1) if flip else opacity)
        return {"a": from_uint8(torch.stack(crops_a)), "b": from_uint8(torch.stack(crops_b)),
                "opacity": torch.stack(opacities).float() / 255}
