"""Peak memory and CPU time of one forward + backward of BigGAN's self-attention layer, fused kernel vs the explicit
(HW x HW/4) matrix that a gradient penalty needs. Each mode runs in its own process (peak RSS is per process).

    python benchmarks/attention_memory.py [--batch 4] [--size 128] [--channels 64]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time


def measure(explicit: bool, batch: int, size: int, channels: int) -> None:
    import torch

    from ganforge.nn.attention import SelfAttention

    torch.manual_seed(0)
    layer = SelfAttention(channels, twice_differentiable=explicit)
    x = torch.randn(batch, channels, size, size, requires_grad=True)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.process_time()
    layer(x).square().mean().backward()
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024
    print(f"| {'explicit matrix' if explicit else 'fused kernel'} | {peak:.0f} | {time.process_time() - began:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=128, help="feature-map side (BigGAN at 256 px: 128)")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--mode", choices=["explicit", "fused"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        measure(args.mode == "explicit", args.batch, args.size, args.channels)
        return
    print(f"batch {args.batch}, {args.channels} channels, {args.size}x{args.size} positions")
    print("| attention | peak MB above start | CPU s |\n|---|---|---|", flush=True)
    for mode in ("explicit", "fused"):
        subprocess.run([sys.executable, __file__, "--mode", mode, "--batch", str(args.batch), "--size",
                        str(args.size), "--channels", str(args.channels)], check=True)


if __name__ == "__main__":
    main()
