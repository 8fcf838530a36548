"""Pair makers: turn any image folder into a paired task, A = degraded input, B = the clean image (or, for
`painting`, A = the photo and B = its oil-paint rendering).

Every maker is a function (PIL RGB image, numpy Generator) -> PIL image; `make_pairs` seeds one generator per file
from (seed, file name), so the output is reproducible and does not depend on which other files are present.
"""

from __future__ import annotations

import hashlib
import string
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ganforge.data.image_files import list_images, read_image
from ganforge.errors import GanforgeError

WORDS = ("SAMPLE", "PROOF", "COPYRIGHT", "STOCK", "PREVIEW", "DRAFT", "ganforge", "photo", "(c) 2024", "CONFIDENTIAL")


def _random_text(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return str(rng.choice(WORDS))
    alphabet = string.ascii_letters + string.digits
    return "".join(rng.choice(list(alphabet), size=int(rng.integers(3, 10))))


def _colour(rng: np.random.Generator, alpha: int) -> tuple[int, int, int, int]:
    r, g, b = (int(v) for v in rng.integers(0, 256, 3))
    return r, g, b, alpha


def _text_mark(size: int, rng: np.random.Generator) -> Image.Image:
    font = ImageFont.load_default(size=int(rng.uniform(0.08, 0.3) * size) + 6)
    text = _random_text(rng)
    box = ImageDraw.Draw(Image.new("RGBA", (1, 1))).textbbox((0, 0), text, font=font)
    mark = Image.new("RGBA", (box[2] - box[0] + 4, box[3] - box[1] + 4), (0, 0, 0, 0))
    alpha = int(rng.uniform(0.35, 0.85) * 255)
    ImageDraw.Draw(mark).text((2 - box[0], 2 - box[1]), text, font=font, fill=_colour(rng, alpha))
    return mark


def _logo_mark(size: int, rng: np.random.Generator) -> Image.Image:
    side = max(8, int(rng.uniform(0.15, 0.45) * size))
    mark = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(mark)
    alpha = int(rng.uniform(0.35, 0.85) * 255)
    line = max(1, side // 12)
    for _ in range(int(rng.integers(1, 4))):
        shape = rng.integers(0, 3)
        x0, y0 = (int(v) for v in rng.integers(0, side // 2, 2))
        x1, y1 = (int(v) for v in rng.integers(side // 2, side, 2))
        fill = _colour(rng, alpha) if rng.random() < 0.5 else None
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), outline=_colour(rng, alpha), fill=fill, width=line)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), outline=_colour(rng, alpha), fill=fill, width=line)
        else:
            points = [tuple(int(v) for v in rng.integers(0, side, 2)) for _ in range(3)]
            draw.polygon(points, outline=_colour(rng, alpha), fill=fill, width=line)
    return mark


def _tiled_mark(base: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A stock-photo watermark: one word repeated in rows across the whole image, faint, in one colour."""
    size = min(base.size)
    font = ImageFont.load_default(size=int(rng.uniform(0.05, 0.1) * size) + 6)
    text = str(rng.choice(WORDS))
    alpha = int(rng.uniform(0.2, 0.5) * 255)
    colour = (255, 255, 255, alpha) if rng.random() < 0.6 else _colour(rng, alpha)
    side = int(1.5 * max(base.size))  # drawn larger, rotated, then cropped to the image
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    box = draw.textbbox((0, 0), text, font=font)
    step_x, step_y = int((box[2] - box[0]) * rng.uniform(1.4, 2.2)), int((box[3] - box[1]) * rng.uniform(2.5, 4))
    for row, y in enumerate(range(0, side, max(step_y, 1))):
        for x in range(-(row % 2) * step_x // 2, side, max(step_x, 1)):
            draw.text((x, y), text, font=font, fill=colour)
    layer = layer.rotate(float(rng.uniform(-40, 40)), resample=Image.BICUBIC)
    left, top = (side - base.width) // 2, (side - base.height) // 2
    return layer.crop((left, top, left + base.width, top + base.height))


def watermark_with_mask(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, Image.Image]:
    """`watermark` and its mask: the marks' combined opacity (L image, 0 where the image is untouched)."""
    base = image.convert("RGBA")
    size = min(base.size)
    coverage = np.zeros(base.size[::-1], np.float64)  # 1 - prod(1 - alpha) over the marks
    layers = []
    if size >= 128 and rng.random() < 0.25:  # repeated text across the image needs room: photos only
        layers.append(_tiled_mark(base, rng))
    for _ in range(int(rng.integers(1, 4))):
        mark = _text_mark(size, rng) if rng.random() < 0.6 else _logo_mark(size, rng)
        mark = mark.rotate(float(rng.uniform(-45, 45)), expand=True, resample=Image.BICUBIC)
        x = int(rng.integers(-mark.width // 3, max(1, base.width - 2 * mark.width // 3)))
        y = int(rng.integers(-mark.height // 3, max(1, base.height - 2 * mark.height // 3)))
        layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
        layer.paste(mark, (x, y), mark)
        layers.append(layer)
    for layer in layers:
        base = Image.alpha_composite(base, layer)
        coverage = 1 - (1 - coverage) * (1 - np.asarray(layer.getchannel("A"), np.float64) / 255)
    return base.convert("RGB"), Image.fromarray(np.round(coverage * 255).astype(np.uint8), "L")


def watermark(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """1-3 text or logo marks of random size (relative to the image), opacity, colour, rotation and position; on
    images of 128 px and more, a quarter also get a faint word repeated across the whole image."""
    return watermark_with_mask(image, rng)[0]


def noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Additive Gaussian noise, sigma drawn from 10 to 40 (of 255)."""
    array = np.asarray(image, dtype=np.float32)
    noisy = array + rng.normal(0.0, rng.uniform(10, 40), array.shape)
    return Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8))


def grey(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Luminance only (ITU-R 601), for colourisation."""
    return image.convert("L")


def blur(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Gaussian blur with a radius of 0.6 to 1.5 px per 64 px of the shorter side (at least 0.6 to 1.5 px)."""
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.5) * max(1.0, min(image.size) / 64)))


def _box_sums(x: np.ndarray, side: int) -> np.ndarray:
    """Sums over every side x side window: out[y, x] = x[y:y + side, x:x + side].sum((0, 1))."""
    total = np.pad(x.cumsum(0).cumsum(1), ((1, 0), (1, 0)) + ((0, 0),) * (x.ndim - 2))
    return total[side:, side:] - total[:-side, side:] - total[side:, :-side] + total[:-side, :-side]


def kuwahara(array: np.ndarray, radius: int) -> np.ndarray:
    """Kuwahara filter (Kuwahara et al. 1976): each pixel takes the mean colour of the one of its four
    (radius + 1)-square quadrants, each including the pixel, whose luminance varies least."""
    x = array.astype(np.float64)
    if x.ndim == 2:
        x = x[..., None]
    side = radius + 1
    padded = np.pad(x, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    luma = padded @ np.array([0.299, 0.587, 0.114]) if x.shape[-1] == 3 else padded[..., 0]
    area = side * side
    means = _box_sums(padded, side) / area
    variance = _box_sums(luma * luma, side) / area - (_box_sums(luma, side) / area) ** 2
    h, w = x.shape[:2]
    # in padded coordinates the quadrants of pixel (i, j) start at (i, j), (i, j + r), (i + r, j), (i + r, j + r)
    corners = [(0, 0), (0, radius), (radius, 0), (radius, radius)]
    variances = np.stack([variance[dy:dy + h, dx:dx + w] for dy, dx in corners])
    quadrant_means = np.stack([means[dy:dy + h, dx:dx + w] for dy, dx in corners])
    best = variances.argmin(0)
    picked = np.take_along_axis(quadrant_means, best[None, ..., None], 0)[0]
    picked = np.clip(np.round(picked), 0, 255).astype(np.uint8)
    return picked if array.ndim == 3 else picked[..., 0]


def painting(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """An oil-paint rendering: Kuwahara smoothing, colour quantisation and a touch of saturation."""
    from PIL import ImageEnhance

    radius = max(2, round(min(image.size) / 64))
    smooth = Image.fromarray(kuwahara(np.asarray(image.convert("RGB")), radius))
    smooth = ImageEnhance.Color(smooth).enhance(1.3)
    colours = int(rng.integers(12, 25))
    return smooth.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).convert("RGB")


MAKERS: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "watermark": watermark, "noise": noise, "grey": grey, "blur": blur, "painting": painting,
}


def file_rng(seed: int, name: str) -> np.random.Generator:
    """A generator seeded by (seed, file name): a file's pair does not depend on the other files."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def make_pair(kind: str, image: Image.Image, seed: int = 0, name: str = "") -> tuple[Image.Image, Image.Image]:
    """(A, B) for one image: A the maker's input, B its target."""
    if kind not in MAKERS:
        raise GanforgeError(f"unknown pair maker '{kind}' (expected one of: {', '.join(MAKERS)})")
    image = image.convert("RGB")
    made = MAKERS[kind](image, file_rng(seed, name))
    return (image, made) if kind == "painting" else (made, image)


def held_out_count(n: int, fraction: float) -> int:
    """How many of n images a held-out `fraction` takes: round(fraction * n), at least 1 and at most n - 1."""
    if not 0 <= fraction < 1:
        raise GanforgeError(f"--split must be in [0, 1), got {fraction}")
    count = round(fraction * n)
    return min(max(count, 1), n - 1) if fraction > 0 and n > 1 else count


def held_out(names: list[str], fraction: float, seed: int) -> set[str]:
    """The names of a held-out split: round(fraction * n) of them (at least 1 when fraction > 0 and n > 1), picked
    by a hash of (seed, name), so the split depends only on the seed and the names, not on their order."""
    count = held_out_count(len(names), fraction)
    ranked = sorted(names, key=lambda name: hashlib.sha256(f"{seed}:split:{name}".encode()).digest())
    return set(ranked[:count])


def make_pairs(kind: str, source: str | Path, out: str | Path, seed: int = 0, limit: int | None = None,
               max_size: int | None = None, split: float = 0.0, copies: int = 1) -> int:
    """Write OUT/A/<name>.png and OUT/B/<name>.png for every image below SOURCE (and OUT/M/<name>.png, the mask of
    the changed pixels, for watermarks); with `split` > 0, OUT/train/{A,B,M} and a held-out OUT/test/{A,B,M} with
    that fraction of the images (`held_out`). `copies` > 1 writes that many differently degraded pairs of every
    training image (<name>, <name>.copy1, ...; the first is the pair copies=1 writes), more marks to learn from a
    few photos; held-out images get one. Returns the number of source images."""
    if copies < 1:
        raise GanforgeError(f"--copies must be at least 1, got {copies}")
    if kind not in MAKERS:
        raise GanforgeError(f"unknown pair maker '{kind}' (expected one of: {', '.join(MAKERS)})")
    source, out = Path(source).expanduser(), Path(out).expanduser()
    if not source.is_dir():
        raise GanforgeError(f"{source}: no such folder of images")
    files = list_images(source)[:limit]
    if not files:
        raise GanforgeError(f"{source}: no image files found")
    names = [str(p.relative_to(source).with_suffix(".png")) for p in files]
    seen: dict[str, Path] = {}
    for path, name in zip(files, names):
        if name in seen:
            raise GanforgeError(f"{source}: {seen[name].name} and {path.name} would both be written as {name}")
        seen[name] = path
    test = held_out(names, split, seed)
    written = 0
    for path, name in zip(files, names):
        image = read_image(path, "RGB")  # a GanforgeError naming the file if unreadable
        if max_size and max(image.size) > max_size:
            image.thumbnail((max_size, max_size), Image.LANCZOS)
        root = out / ("test" if name in test else "train") if split > 0 else out
        for copy in range(1 if name in test else copies):
            key = name if copy == 0 else f"{name}#{copy}"  # the rng's name: copy 0 is the copies=1 pair
            written_as = name if copy == 0 else str(Path(name).with_suffix(f".copy{copy}.png"))
            if copy and written_as in seen:
                raise GanforgeError(f"{source}: {seen[written_as].name} and a copy of {name} would both be "
                                    f"written as {written_as}")
            if kind == "watermark":
                a, mask = watermark_with_mask(image.convert("RGB"), file_rng(seed, key))
                pictures = (("A", a), ("B", image.convert("RGB")), ("M", mask))
            else:
                pictures = tuple(zip("AB", make_pair(kind, image, seed, key)))
            for folder, picture in pictures:
                target = root / folder / written_as
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    picture.save(target)
                except OSError as error:
                    raise GanforgeError(f"cannot write {target}: {error.strerror or error}") from None
        written += 1
    return written
