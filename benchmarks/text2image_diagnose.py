"""Why does (or doesn't) a text2image run follow its captions? Probes of one checkpoint on shapes-captions:

- D's caption sensitivity: its score of real renders with their own caption vs the same caption with the first
  thing's colour (or shape) changed, and vs another scene's caption (share of images where the right one wins);
- sentence-vector collapse: mean pairwise cosine of G's and D's sentence vectors over the 24 one-thing captions,
  and over the pairs that differ only in the shape (only in the colour);
- how much G's images change when the caption is swapped vs when the noise is swapped;
- gradient norms of G's loss reaching G's caption encoder, affine (FiLM) layers, convolutions and start layer;
- with D's word head (`--opt word_head=W`): how often its highest-scoring shape (colour) word is the first thing's
  shape (colour) or the second's, on real renders and on G's images of one-thing captions.

    OMP_NUM_THREADS=1 python benchmarks/text2image_diagnose.py runs-bench/t2i-shapes [step_000400]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import ganforge
from ganforge.data.shapes import COLOURS, SHAPES, Scene, Thing, make_scenes, render_scenes
from ganforge.media import from_uint8


def changed(scene: Scene, kind: str, rng: np.random.Generator) -> Scene:
    """The scene with its first thing's colour or shape changed to another one."""
    t = scene.first
    if kind == "colour":
        first = Thing(str(rng.choice([c for c in COLOURS if c != t.colour])), t.shape, t.size)
    else:
        first = Thing(t.colour, str(rng.choice([s for s in SHAPES if s != t.shape])), t.size)
    return Scene(first, scene.second, scene.relation)


def norm(module: torch.nn.Module) -> float:
    return float(sum(p.grad.norm() ** 2 for p in module.parameters() if p.grad is not None) ** 0.5)


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    run, name = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
    family = ganforge.load(run, name).family if name else ganforge.load(run).family
    g, d, encode = family.generator, family.discriminator, family.encode_captions
    g.eval(), d.eval()
    rng = np.random.default_rng(5)
    scenes = make_scenes(200, 123, "train")
    images = from_uint8(render_scenes(scenes, family.info.resolution, 9))
    right = [s.caption() for s in scenes]
    with torch.no_grad():
        own = d.score(images, d.encode(encode(right)))
        for kind in ("colour", "shape"):
            other = d.score(images, d.encode(encode([changed(s, kind, rng).caption() for s in scenes])))
            print(f"D: real with own caption {own.mean():.3f}, first thing's {kind} changed {other.mean():.3f}; "
                  f"own wins for {(own > other).float().mean():.2f}")
        other = d.score(images, d.encode(encode([right[i] for i in torch.randperm(len(right))])))
        print(f"D: another scene's caption {other.mean():.3f}; own wins for {(own > other).float().mean():.2f}")
        if getattr(d, "embed_image", None) is not None:  # --opt contrastive=W: D's image embedding vs captions
            mine = d.encode(encode(right))
            embedded = torch.nn.functional.normalize(d.judge(images, mine, words=False, embed=True)[2], dim=1)
            cos = (embedded * torch.nn.functional.normalize(mine, dim=1)).sum(1)
            for kind in ("colour", "shape"):
                wrong = d.encode(encode([changed(s, kind, rng).caption() for s in scenes]))
                worse = (embedded * torch.nn.functional.normalize(wrong, dim=1)).sum(1)
                print(f"D's contrastive embedding: own caption nearer than the first thing's {kind} changed for "
                      f"{(cos > worse).float().mean():.2f}")
        single = encode([f"a {c} {s}" for c in COLOURS for s in SHAPES])
        for who, text in (("G", g.text), ("D", d.text)):
            v = torch.nn.functional.normalize(text(single), dim=1)
            cos = (v @ v.T)[~torch.eye(len(v), dtype=torch.bool)]
            print(f"{who}'s sentence vectors of the 24 one-thing captions: mean pairwise cosine {cos.mean():.3f}")
            grid = v.view(len(COLOURS), len(SHAPES), -1)  # does the vector still tell shapes apart (issue 16, s7)?
            upper_s, upper_c = torch.triu_indices(len(SHAPES), len(SHAPES), 1), torch.triu_indices(len(COLOURS),
                                                                                                 len(COLOURS), 1)
            shape_pairs = torch.einsum("csd,ctd->cst", grid, grid)[:, upper_s[0], upper_s[1]]
            colour_pairs = torch.einsum("csd,esd->sce", grid, grid)[:, upper_c[0], upper_c[1]]
            print(f"{who}: cosine of captions that differ only in the shape {shape_pairs.mean():.3f}, only in the "
                  f"colour {colour_pairs.mean():.3f}")
        z = torch.randn(len(single), family.config.model.latent_dim)
        base = g(z, single)
        swap_caption = (base - g(z, single[torch.randperm(len(single))])).abs().mean()
        swap_noise = (base - g(z[torch.randperm(len(z))], single)).abs().mean()
        print(f"G: mean pixel change, caption swapped {swap_caption:.3f}, noise swapped {swap_noise:.3f}")
        if d.words is not None:
            words = family.vocabulary.words
            one_thing = [[Thing(c, s, "small")] for c in COLOURS for s in SHAPES]
            for who, pictures, things in (("real renders", images, [[s.first, s.second or s.first] for s in scenes]),
                                          ("G's images", base, one_thing)):
                logits = d.score_and_words(pictures, d.encode(encode(right[:len(pictures)])))[1]
                for kind, names in (("colour", COLOURS), ("shape", SHAPES)):
                    ids = torch.tensor([words.index(n) for n in names])
                    best = [list(names)[i] for i in logits[:, ids].argmax(1).tolist()]
                    hits = np.mean([b in [getattr(t, kind) for t in ts] for b, ts in zip(best, things)])
                    print(f"D's word head on {who}: top {kind} word is a {kind} in the scene for {hits:.2f}")
    g.train(), d.train()
    captions = encode(right[:32])
    fake = g(torch.randn(32, family.config.model.latent_dim), captions)
    (-d.score(fake, d.encode(captions)).mean()).backward()
    affines = sum(norm(b.affine1) + norm(b.affine2) for b in g.blocks)
    convs = sum(norm(b.conv1) + norm(b.conv2) for b in g.blocks)
    print(f"G's loss gradient norms: caption encoder {norm(g.text):.2e}, affines {affines:.2e}, convolutions "
          f"{convs:.2e}, start {norm(g.start):.2e}")


if __name__ == "__main__":
    main()
