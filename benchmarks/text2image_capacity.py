"""Can text2image's generator draw the shapes at all? A capacity probe with no GAN (issue 16): the generator (same
network as the family builds: 32 px, `--width`, GRU encoder, caption at the start layer) is fitted by L1 to reproduce
`--images` real shapes-captions renders, each from its first caption and a latent of its own that is learnt with it
(GLO, Bojanowski et al. 2018). The shipped attribute classifier then reads the fits (eval mode) against their scenes.
If the fits read as the right shapes, the generator can draw them and what a GAN run lacks is the training signal.

`--against-head RUN` asks the other question: is the word head of a trained run (`--opt word_head=W`) a shape
signal a generator cannot fake? A fresh generator (default networks, RUN's caption encoder frozen, Adam 2e-4, betas
0 / 0.9, batch 32) is trained against RUN's frozen head alone (its bag-of-words loss, no GAN loss); every `--every`
steps, 256 of its images of training captions are read by the head (is its top shape word one of the caption's?) and
by the shipped classifier. With `--head-fake W` the head keeps learning while G trains (Adam 4e-4, betas 0 / 0.9,
as D): on real renders which words their captions have, and, with weight W, that G's images have none (a per-word
real/fake head, as Omni-GAN's multi-label discriminator); W = 0 keeps it learning on real renders only. With
`--head-match`, G's loss is instead the family's `word_match` term: per word, the distance between the mean head
features (the 128 its logits are read from) of G's images and of real renders whose captions have that word (G draws
the real batch's captions).

    OMP_NUM_THREADS=1 python benchmarks/text2image_capacity.py --width 16 --steps 600 --images 32
    OMP_NUM_THREADS=1 python benchmarks/text2image_capacity.py --against-head runs-bench/t2i-shapes --steps 300
    OMP_NUM_THREADS=1 python benchmarks/text2image_capacity.py --against-head runs-bench/t2i-shapes --head-match
    OMP_NUM_THREADS=1 python benchmarks/text2image_capacity.py --against-head runs-bench/t2i-shapes --head-fake 0.01
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from ganforge import media
from ganforge.data.shapes import SHAPES, make_scenes, parse_caption, shapes_captions
from ganforge.metrics.captions import attribute_accuracy, load_classifier, read_scenes
from ganforge.nn.text2image import Generator


def descend(opt, loss):
    """One optimiser step on `loss`; returns it (for printing)."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--every", type=int, default=200)
    parser.add_argument("--figure", default="", help="save the last fits (up to 64) to this PNG")
    parser.add_argument("--against-head", default="", metavar="RUN", help="train against RUN's word head instead")
    parser.add_argument("--head-fake", type=float, default=None, metavar="W",
                        help="with --against-head: the head keeps learning, G's images as fakes with weight W")
    parser.add_argument("--head-match", action="store_true",
                        help="with --against-head: G matches the head's features per word instead of its logits")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.against_head:
        return against_head(args)
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
        loss = descend(opt, F.l1_loss(g(latents[idx], tokens[idx]), images[idx]))
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


def against_head(args) -> None:
    import ganforge
    from ganforge.families.text2image import bag_of_words, word_feature_gap, word_loss

    family = ganforge.load(args.against_head).family
    head = family.discriminator.words
    if head is None:
        raise SystemExit(f"{args.against_head}: this run has no word head (--opt word_head=W)")
    learning = args.head_fake is not None
    head.eval().requires_grad_(learning)
    data = shapes_captions(2000, 32, seed=5)
    real_images = media.from_uint8(data.images)
    if learning:
        head_opt = torch.optim.Adam(head.parameters(), 4e-4, betas=(0.0, 0.9))
    size, shape_ids = len(data.vocabulary), torch.tensor([data.vocabulary.index[s] for s in SHAPES])
    torch.manual_seed(0)
    g = Generator(100, size, 64, 128, "gru", 3, 32, args.width, "batch", True, True)
    g.text.load_state_dict(family.discriminator.text.state_dict())
    opt = torch.optim.Adam([p for n, p in g.named_parameters() if not n.startswith("text.")], 2e-4, betas=(0.0, 0.9))
    classifier, draw, start = load_classifier(), torch.Generator().manual_seed(1), time.process_time()
    test = torch.arange(0, len(data.texts), 7)[:256]
    scenes = [parse_caption(data.texts[i]) for i in test.tolist()]
    for step in range(1, args.steps + 1):
        tokens = data.tokens[torch.randint(0, len(data.texts), (32,), generator=draw)]
        if learning:  # the head's step: real renders' words (train mode), G's images have none (eval mode)
            pick = torch.randint(0, len(real_images), (32,), generator=draw)
            caption = data.first[pick] + (torch.rand(32, generator=draw) * data.counts[pick]).long()
            head.train()
            real_loss = word_loss(head(real_images[pick]), data.tokens[caption])
            head.eval()
            with torch.no_grad():
                fake = g(torch.randn(32, 100), tokens)
            descend(head_opt, real_loss + args.head_fake * word_loss(head(fake), torch.zeros_like(tokens)))
            head.requires_grad_(False)
        if args.head_match:  # G draws a real batch's captions and matches the head's features per word
            pick = torch.randint(0, len(real_images), (32,), generator=draw)
            tokens = data.tokens[data.first[pick] + (torch.rand(32, generator=draw) * data.counts[pick]).long()]
            with torch.no_grad():
                real = head.features(real_images[pick])
            loss = descend(opt, word_feature_gap(head.features(g(torch.randn(32, 100), tokens)), real, tokens, tokens,
                                                 size))
        else:
            loss = descend(opt, word_loss(head(g(torch.randn(32, 100), tokens)), tokens))
        head.requires_grad_(learning)
        if step % args.every == 0 or step == args.steps:
            g.eval()
            with torch.no_grad():
                tokens = data.tokens[test]
                images = g(torch.randn(len(test), 100, generator=torch.Generator().manual_seed(2)), tokens)
                logits = head(images)
            g.train()
            top = shape_ids[logits[:, shape_ids].argmax(1)]
            named = bag_of_words(tokens, size)[torch.arange(len(top)), top].mean().item()
            acc = attribute_accuracy(read_scenes(classifier, images), scenes)
            print(f"step {step} head loss {loss.item():.2f}; head: top shape word in the caption {named:.2f}; "
                  f"classifier: colour {acc['colour']:.3f} shape {acc['shape']:.3f}; "
                  f"CPU {time.process_time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
