"""Can text2image's generator draw the shapes at all? A capacity probe with no GAN (issue 16): the generator (same
network as the family builds: 32 px, `--width`, GRU encoder, caption at the start layer) is fitted by L1 to reproduce
`--images` real shapes-captions renders, each from its first caption and a latent of its own that is learnt with it
(GLO, Bojanowski et al. 2018). The shipped attribute classifier then reads the fits (eval mode) against their scenes.
If the fits read as the right shapes, the generator can draw them and what a GAN run lacks is the training signal.

    OMP_NUM_THREADS=1 python benchmarks/text2image_capacity.py --width 16 --steps 600 --images 32
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from ganforge import media
from ganforge.data.shapes import make_scenes, shapes_captions
from ganforge.metrics.captions import attribute_accuracy, load_classifier, read_scenes
from ganforge.nn.text2image import Generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--every", type=int, default=200)
    parser.add_argument("--figure", default="", help="save the last fits (up to 64) to this PNG")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = args.images
    data, scenes = shapes_captions(n, 32, seed=0), make_scenes(n, 0)
    images, tokens = media.from_uint8(data.images), data.tokens[data.first]
    torch.manual_seed(0)
    g = Generator(100, len(data.vocabulary), 64, 128, "gru", 3, 32, args.width, "batch", False, True)
    latents = torch.nn.Parameter(torch.randn(n, 100) * 0.1)
    opt = torch.optim.Adam([*g.parameters(), latents], 1e-3, betas=(0.5, 0.99))
    classifier, draw, start = load_classifier(), torch.Generator().manual_seed(1), time.process_time()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, n, (32,), generator=draw)
        loss = F.l1_loss(g(latents[idx], tokens[idx]), images[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.every == 0 or step == args.steps:
            g.eval()
            with torch.no_grad():
                fits = torch.cat([g(latents[i:i + 64], tokens[i:i + 64]) for i in range(0, n, 64)])
            g.train()
            acc = attribute_accuracy(read_scenes(classifier, fits), scenes)
            print(f"width {args.width} step {step} L1 {loss.item():.3f} colour {acc['colour']:.3f} "
                  f"shape {acc['shape']:.3f} position {acc.get('position', 0):.3f} "
                  f"CPU {time.process_time() - start:.0f} s", flush=True)
    if args.figure:
        media.save(media.Images(fits[:64]), args.figure, zoom=2, nrow=8)


if __name__ == "__main__":
    main()
