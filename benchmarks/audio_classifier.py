"""Train ganforge's shipped `spoken-digits` audio extractor on the Free Spoken Digit Dataset, one speaker held out.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/audio_classifier.py [--data ../shared/data/fsdd-5-speakers.tar]

Extracts the archive to a temporary folder, reads it as ganforge trains on it (8 kHz, 8,192 samples, peak
normalised, digit labels from the file names), trains on four speakers, reports the accuracy on the fifth and writes
ganforge/weights/spoken-digits.safetensors + .json (the report is in the JSON). CPU time is measured with
time.process_time (single-threaded).
"""
from __future__ import annotations

import argparse
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from ganforge.data.audio import list_audio, load_audio
from ganforge.metrics.audio_classifier import fit_audio_classifier

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "fsdd-5-speakers.tar"


def fsdd_folder(archive: Path, into: Path) -> Path:
    """The archive's recordings/ folder, extracted under `into`."""
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "recordings"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ARCHIVE, help="the FSDD .tar, or an extracted recordings/ folder")
    parser.add_argument("--holdout", default="theo", help="speaker left out of training")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "ganforge" / "weights" / "spoken-digits.safetensors")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data if args.data.is_dir() else fsdd_folder(args.data, Path(tmp))
        data = load_audio(str(folder), 8000, 8192, "peak")
        speakers = [p.stem.split("_")[1] for p in list_audio(folder)]
    if data.skipped:
        raise SystemExit(f"{data.skipped} files skipped: speakers would not line up with clips")
    held = torch.tensor([s == args.holdout for s in speakers])
    started = time.process_time()
    report = fit_audio_classifier(data.waves[~held], data.labels[~held], data.classes, args.out, 8000,
                                  epochs=args.epochs, holdout=(data.waves[held], data.labels[held]),
                                  notes={"data": "FSDD (fsdd-5-speakers.tar), 8 kHz, 8192 samples, peak-normalised",
                                         "holdout": f"speaker {args.holdout} (all {int(held.sum())} of their clips)"})
    print(f"held-out speaker {args.holdout}: accuracy {report['holdout_accuracy']:.3f} on {report['n_holdout']} "
          f"clips; trained on {report['n_train']} clips in {time.process_time() - started:.0f} CPU s; "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()
