"""Sanity table for the metrics: real vs real, vs noise, vs blurred/noised real, vs a one-class generator.

    python benchmarks/metrics_sanity.py [--sets digits,cifar10] [--data ../shared/data] [--run RUN] [--write]

digits:  sklearn digits upscaled to 32 px, extractor 'digits'; reference = even indices, test rows from odd ones.
cifar10: the CIFAR-10 test split (JPEG), extractor 'cifar10'; reference = even indices, test rows from odd ones
         (the extractor was trained on 80% of these images, so this checks the metrics, not generalisation).
--run RUN adds a row scoring RUN's samples (ganforge.load(RUN).sample) against the reference of the matching set.
--write replaces each set's table between its markers in docs/metrics.md (other sets' tables are kept).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from torchvision.transforms.functional import gaussian_blur

from ganforge.metrics import evaluate_images, load_extractor

sys.path.insert(0, str(Path(__file__).parent))
from train_extractors import sklearn_digits  # noqa: E402

METRICS = ("fid", "kid", "pr", "dc", "is", "kl", "mode_collapse")
DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
BLURS = (0.5, 1.0, 2.0)
NOISES = (0.1, 0.2, 0.4)


def load_set(name: str, data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    if name == "digits":
        return sklearn_digits(32)
    from ganforge.metrics.images import load_images

    loaded = load_images(data / "cifar10-test-jpg.tar")
    return loaded.images, loaded.labels


def one_class(images: torch.Tensor, labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """A 'generator' that only makes class 3: its real images tiled to N, each copy shifted by up to 2 px."""
    pool = images[labels == 3]
    g = torch.Generator().manual_seed(seed)
    picks = pool[torch.randint(len(pool), (n,), generator=g)]
    shifts = torch.randint(-2, 3, (n, 2), generator=g)
    return torch.stack([p.roll(tuple(s.tolist()), dims=(1, 2)) for p, s in zip(picks, shifts)])


def rows_for(name: str, data: Path, run: str | None, seed: int = 0) -> list[tuple[str, dict]]:
    images, labels = load_set(name, data)
    reference, test, test_labels = images[0::2], images[1::2], labels[1::2]
    n = len(test)
    g = torch.Generator().manual_seed(seed)
    candidates = [("real vs real (other half)", test),
                  ("uniform noise", torch.rand(test.shape, generator=g) * 2 - 1)]
    for sigma in BLURS:
        candidates.append((f"blur sigma={sigma}", gaussian_blur(test, 2 * math.ceil(3 * sigma) + 1, sigma)))
    for sigma in NOISES:
        noisy = (test + sigma * torch.randn(test.shape, generator=g)).clamp(-1, 1)
        candidates.append((f"gaussian noise sigma={sigma}", noisy))
    candidates.append(("one class only (class 3, shifted copies)", one_class(test, test_labels, n, seed)))
    if run:
        import ganforge  # DCGAN (or any run) row: the run's samples against this set's reference half

        candidates.append((f"run {Path(run).name}", ganforge.load(run).sample(n, seed=seed).tensor))
    extractor = load_extractor(name)
    rows = []
    for label, fake in candidates:
        scores = evaluate_images(fake, reference, METRICS, extractor, seed=seed, reference_split="even indices")
        rows.append((label, scores))
        print(f"{name:8s} {label:42s} FID {scores['fid']:9.3f}", flush=True)
    return rows


def check(name: str, rows: list[tuple[str, dict]]) -> list[str]:
    """The properties the table must show; returns failures."""
    fid = {label: s["fid"] for label, s in rows}
    failures = []
    blur = [fid[f"blur sigma={s}"] for s in BLURS]
    noise = [fid[f"gaussian noise sigma={s}"] for s in NOISES]
    same = fid["real vs real (other half)"]
    if not same < 0.05 * fid["uniform noise"]:
        failures.append(f"{name}: real-vs-real FID {same:.3f} is not near 0 next to noise {fid['uniform noise']:.3f}")
    for what, series in (("blur", blur), ("noise", noise)):
        if not all(a < b for a, b in zip([same] + series, series)):
            failures.append(f"{name}: FID not strictly increasing with {what}: {series}")
    collapse = dict(rows)["one class only (class 3, shifted copies)"]["mode_collapse"]
    if not collapse["collapsed"] or dict(rows)["real vs real (other half)"]["mode_collapse"]["collapsed"]:
        failures.append(f"{name}: mode-collapse report did not single out the one-class generator")
    return failures


def markdown(name: str, rows: list[tuple[str, dict]]) -> str:
    record = rows[0][1]["record"]
    lines = [f"**{name}** — extractor `{record.extractor}` (weights sha256 `{record.extractor_hash}`, "
             f"resize `{record.resize_filter}`), n_real {record.n_real}, n_fake {record.n_fake}, seed {record.seed}",
             "",
             "| fake set | FID | KID x1e3 | precision | recall | density | coverage | IS | class KL | classes | "
             "top class | near-dup | collapsed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, s in rows:
        c = s["mode_collapse"]
        lines.append(
            f"| {label} | {s['fid']:.3f} | {1e3 * s['kid']:.2f} | {s['precision']:.3f} | {s['recall']:.3f} | "
            f"{s['density']:.3f} | {s['coverage']:.3f} | {s['is']:.2f} | {s['class_kl']:.3f} | "
            f"{c['classes_covered']}/{c['real_classes_covered']} | {c['largest_class_share']:.2f} | "
            f"{c['near_duplicate_rate']:.2f} | {'**yes**' if c['collapsed'] else 'no'} |")
    return "\n".join(lines)


def write_table(name: str, table: str) -> None:
    """Replace the text between this set's markers in docs/metrics.md."""
    start, end = f"<!-- sanity-table:{name}:start -->", f"<!-- sanity-table:{name}:end -->"
    doc = DOC.read_text()
    head, rest = doc.split(start)
    DOC.write_text(f"{head}{start}\n{table}\n{end}{rest.split(end)[1]}")
    print(f"updated {DOC} ({name})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="digits,cifar10")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--run", default=None, help="a trained run folder to add as a row (e.g. a DCGAN run)")
    parser.add_argument("--write", action="store_true", help=f"update the table in {DOC}")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    failures = []
    for name in args.sets.split(","):
        rows = rows_for(name, args.data, args.run)
        table = markdown(name, rows)
        print(table)
        failures += check(name, rows)
        if args.write:
            write_table(name, table)
    print("checks: " + ("all passed" if not failures else "; ".join(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
