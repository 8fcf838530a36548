"""`shapes-captions`: a synthetic text-to-image data set of one or two coloured shapes on a dark background,
captioned from a small grammar ("a small red circle left of a blue square"), seeded, with some colour/shape pairs
held out of training so that generalisation to unseen combinations can be measured."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganforge.errors import GanforgeError

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 90, 235), "yellow": (235, 215, 40),
           "purple": (150, 60, 200), "white": (235, 235, 235)}
SHAPES = ("circle", "square", "triangle", "cross")
SIZES = ("small", "large")
RELATIONS = ("left of", "right of", "above", "below")
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
HELD_OUT = (("red", "triangle"), ("green", "circle"), ("blue", "cross"), ("yellow", "square"))
RADIUS = {"small": 0.11, "large": 0.17}  # fraction of the side
SPLITS = ("train", "held-out", "all")
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Thing:
    colour: str
    shape: str
    size: str

    def words(self, with_size: bool) -> str:
        return f"a {self.size + ' ' if with_size else ''}{self.colour} {self.shape}"

    @property
    def held_out(self) -> bool:
        return (self.colour, self.shape) in HELD_OUT


@dataclass(frozen=True)
class Scene:
    """One thing, or `first` `relation` `second` (e.g. a red circle left of a blue square)."""

    first: Thing
    second: Thing | None = None
    relation: str | None = None

    def caption(self, with_size: bool = True) -> str:
        if self.second is None:
            return self.first.words(with_size)
        return f"{self.first.words(with_size)} {self.relation} {self.second.words(with_size)}"

    def captions(self) -> list[str]:
        """Every caption of the scene: with and without sizes, and for two things both ways round."""
        scenes = [self] if self.second is None else [self, self.swapped()]
        return [s.caption(with_size) for s in scenes for with_size in (True, False)]

    def swapped(self) -> "Scene":
        return Scene(self.second, self.first, INVERSE[self.relation])

    def canonical(self) -> "Scene":
        """The same scene said with 'left of' or 'above' (first thing left or top)."""
        return self.swapped() if self.relation in ("right of", "below") else self

    @property
    def things(self) -> tuple[Thing, ...]:
        return (self.first,) if self.second is None else (self.first, self.second)

    @property
    def held_out(self) -> bool:
        return any(t.held_out for t in self.things)


_THING = r"a (?:(small|large) )?(" + "|".join(COLOURS) + r") (" + "|".join(SHAPES) + ")"
_CAPTION = re.compile(_THING + r"(?: (" + "|".join(RELATIONS) + ") " + _THING + ")?")


def parse_caption(text: str) -> Scene | None:
    """The scene a caption of the grammar describes (size None when not said); None for other text."""
    match = _CAPTION.fullmatch(" ".join(text.lower().split()))
    if match is None:
        return None
    size1, colour1, shape1, relation, size2, colour2, shape2 = match.groups()
    second = Thing(colour2, shape2, size2) if relation else None
    return Scene(Thing(colour1, shape1, size1), second, relation)


def random_thing(rng: np.random.Generator, split: str) -> Thing:
    """A thing of a combination the split allows: train never draws a held-out colour/shape pair."""
    while True:
        thing = Thing(rng.choice(list(COLOURS)), rng.choice(SHAPES), rng.choice(SIZES))
        if split != "train" or not thing.held_out:
            return Thing(str(thing.colour), str(thing.shape), str(thing.size))


def random_scene(rng: np.random.Generator, split: str = "train", two: float = 0.75) -> Scene:
    """One thing (probability 1 - `two`) or two with a relation; `held-out` scenes hold at least one unseen pair."""
    if split not in SPLITS:
        raise GanforgeError(f"shapes-captions split must be one of {', '.join(SPLITS)}, got '{split}'")
    while True:
        first = random_thing(rng, split)
        if rng.random() < two:
            scene = Scene(first, random_thing(rng, split), str(rng.choice(RELATIONS)))
        else:
            scene = Scene(first)
        if split != "held-out" or scene.held_out:
            return scene


def _draw(draw: ImageDraw.ImageDraw, thing: Thing, cx: float, cy: float, side: int) -> None:
    r = RADIUS[thing.size] * side
    x, y = cx * side, cy * side
    fill = COLOURS[thing.colour]
    if thing.shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
    elif thing.shape == "square":
        s = r * 0.85
        draw.rectangle([x - s, y - s, x + s, y + s], fill=fill)
    elif thing.shape == "triangle":
        draw.polygon([(x, y - r), (x + r * 0.95, y + r * 0.75), (x - r * 0.95, y + r * 0.75)], fill=fill)
    else:  # cross
        t = r * 0.35
        draw.rectangle([x - r, y - t, x + r, y + t], fill=fill)
        draw.rectangle([x - t, y - r, x + t, y + r], fill=fill)


def render(scene: Scene, resolution: int, rng: np.random.Generator) -> np.ndarray:
    """The scene as uint8 (3, H, W): a dark tinted background, positions jittered, drawn anti-aliased."""
    side = resolution * SUPERSAMPLE
    background = tuple(int(v) for v in rng.integers(10, 60, 3))
    picture = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(picture)
    if scene.second is None:
        _draw(draw, scene.first, rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), side)
    else:
        near, far = rng.uniform(0.18, 0.32), rng.uniform(0.68, 0.82)  # along the relation's axis
        across = rng.uniform(0.32, 0.68)
        other = float(np.clip(across + rng.uniform(-0.12, 0.12), 0.25, 0.75))
        a, b = (near, far) if scene.relation in ("left of", "above") else (far, near)
        if scene.relation in ("left of", "right of"):
            _draw(draw, scene.first, a, across, side)
            _draw(draw, scene.second, b, other, side)
        else:
            _draw(draw, scene.first, across, a, side)
            _draw(draw, scene.second, other, b, side)
    picture = picture.resize((resolution, resolution), Image.Resampling.BOX)
    return np.asarray(picture).transpose(2, 0, 1)


def render_scenes(scenes: list[Scene], resolution: int, seed: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) pictures of `scenes`, jitter drawn from `seed`."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.stack([render(s, resolution, rng) for s in scenes]))


def make_scenes(n: int, seed: int, split: str = "train") -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [random_scene(rng, split) for _ in range(n)]


def shapes_captions(n: int = 10000, resolution: int = 32, seed: int = 0, split: str = "train"):
    """The synthetic CaptionSet: `n` scenes of the split, each with all its captions (2 or 4)."""
    from ganforge.data.captions import CaptionSet, Vocabulary

    if n < 1:
        raise GanforgeError(f"shapes-captions: need at least 1 image, got {n}")
    scenes = make_scenes(n, seed, split)
    images = render_scenes(scenes, resolution, seed + 1)
    texts, owner = [], []
    for index, scene in enumerate(scenes):
        captions = scene.captions()
        texts += captions
        owner += [index] * len(captions)
    words = [*SIZES, *COLOURS, *SHAPES, "a", "left", "right", "of", "above", "below"]
    name = "shapes-captions" if split == "train" else f"shapes-captions ({split})"
    held_out = [f"{c} {s}" for c, s in HELD_OUT]
    return CaptionSet(images, texts, torch.tensor(owner), Vocabulary(words), name=name, held_out=held_out)

