"""Scores of generated audio against real clips through an audio extractor (default: the shipped `spoken-digits`
classifier): Inception Score and Fréchet distance in its features and the other feature metrics, classes covered,
conditional accuracy (generated clips classified as the class they were asked for), the share of near-silent clips
and a nearest-neighbour memorisation check; every score with its evaluation record."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import torch
from torch import Tensor

from ganforge.errors import GanforgeError
from ganforge.media.batches import Audio
from ganforge.metrics.classes import class_histogram
from ganforge.metrics.evaluate import FEATURE_METRICS, NEEDS_SAMPLES, make_record, scores_from_stats
from ganforge.metrics.extractors import Extractor, load_extractor
from ganforge.metrics.stats import FeatureStats, image_stats

DEFAULT_EXTRACTOR = "spoken-digits"
AUDIO_METRICS = FEATURE_METRICS + ("silence", "nn", "accuracy")
DEFAULT_METRICS = ("fid", "is", "mode_collapse", "silence", "nn", "accuracy")
SILENCE_DB = -30.0  # a clip is near-silent when even its loudest 50 ms frame is quieter than this (dBFS RMS)
FRAME_SECONDS = 0.05


def parse_audio_metrics(metrics: str | Iterable[str] | None) -> tuple[str, ...]:
    """'fid,is,silence' or a list as metric names for audio (None: DEFAULT_METRICS); unknown names are refused."""
    if metrics is None:
        return DEFAULT_METRICS
    names = [m.strip().lower().replace("-", "_") for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in names if m]
    unknown = [m for m in names if m not in AUDIO_METRICS]
    if unknown or not names:
        raise GanforgeError(f"unknown audio metric(s) {', '.join(unknown) or '(none given)'}; choose from "
                            f"{', '.join(AUDIO_METRICS)}")
    return tuple(dict.fromkeys(names))


def loudest_frame_db(clips: Tensor, sample_rate: int) -> Tensor:
    """Per clip (N, C, L): the RMS level in dBFS of its loudest frame of FRAME_SECONDS (channels mixed)."""
    mono = clips.float().mean(1)
    frame = max(1, round(FRAME_SECONDS * sample_rate))
    frames = mono[:, :mono.shape[-1] // frame * frame].reshape(len(mono), -1, frame) if mono.shape[-1] >= frame \
        else mono[:, None]
    rms = frames.square().mean(-1).sqrt().amax(-1)
    return 20 * rms.clamp(min=1e-10).log10()


def near_silent_share(clips: Tensor, sample_rate: int, threshold_db: float = SILENCE_DB) -> float:
    """Share of clips whose loudest 50 ms frame is below `threshold_db` dBFS."""
    return (loudest_frame_db(clips, sample_rate) < threshold_db).float().mean().item()


def nearest_neighbour(real_features: Tensor, fake_features: Tensor, max_samples: int = 2000, seed: int = 0
                      ) -> dict:
    """Memorisation check in feature space: the median distance from a generated clip to its nearest training clip,
    beside the median distance from a training clip to its nearest other training clip; a ratio far below 1 means
    generated clips sit on top of training clips (copies)."""
    rng = torch.Generator().manual_seed(seed)
    real = real_features[torch.randperm(len(real_features), generator=rng)[:max_samples]].float()
    fake = fake_features[torch.randperm(len(fake_features), generator=rng)[:max_samples]].float()
    fake_nn = torch.cdist(fake, real).min(1).values.median().item()
    real_nn = torch.cdist(real, real).fill_diagonal_(math.inf).min(1).values.median().item()
    return {"nn_distance": fake_nn, "nn_distance_real": real_nn, "nn_ratio": fake_nn / real_nn if real_nn else math.nan}


def class_indices(labels: Tensor, names: list[str] | None, extractor: Extractor) -> Tensor:
    """Requested labels as the extractor's class indices: through the class names when given (a run's or a
    folder's classes), else as they are."""
    if not names:
        return labels
    missing = sorted({names[i] for i in labels.tolist()} - set(extractor.classes))
    if missing:
        raise GanforgeError(f"classes {', '.join(missing)} are not among the {extractor.name} extractor's classes "
                            f"({', '.join(extractor.classes)}): conditional accuracy needs matching class names")
    return torch.tensor([extractor.classes.index(names[i]) for i in labels.tolist()])


def at_rate(clips: Audio, extractor: Extractor) -> Tensor:
    """The clips resampled to the extractor's sample rate (polyphase filter), as (N, C, L) float."""
    if clips.sample_rate == extractor.sample_rate:
        return clips.tensor.float()
    from ganforge.data.audio import resample

    waves = [torch.from_numpy(resample(c.double().numpy().T, clips.sample_rate, extractor.sample_rate).T.copy())
             for c in clips.tensor]
    return torch.stack(waves).float()


def resolve_audio_extractor(extractor: str | Path | Extractor | None) -> Extractor:
    """The given extractor (default: spoken-digits), which must take audio."""
    model = load_extractor(extractor or DEFAULT_EXTRACTOR)
    if getattr(model, "modality", "image") != "audio":
        raise GanforgeError(f"extractor {model.name} takes images; audio needs an audio extractor (spoken-digits, "
                            "or one fitted with `ganforge evaluate fit-extractor WAV_FOLDER`)")
    return model


def evaluate_audio(fake: Audio, real: Audio, metrics: str | Iterable[str] | None = None,
                   extractor: str | Path | Extractor | None = None, class_names: list[str] | None = None,
                   real_key: str | None = None, batch_size: int = 250, seed: int = 0, reference_split: str = "",
                   audio_format: str = "tensor", cache: bool = True) -> dict:
    """Scores of FAKE clips against REAL ones plus 'record'. Conditional accuracy needs `fake.labels` (the classes
    asked for; `class_names` maps them to the extractor's classes by name)."""
    metrics = parse_audio_metrics(metrics)
    for clips, what in ((fake, "generated"), (real, "real")):
        if len(clips) < 2:
            raise GanforgeError(f"{what} audio: need at least 2 clips, got {len(clips)}")
    model = resolve_audio_extractor(extractor)
    fake_waves, real_waves = at_rate(fake, model), at_rate(real, model)
    feature_metrics = tuple(m for m in metrics if m in FEATURE_METRICS)
    keep = bool(NEEDS_SAMPLES & set(feature_metrics)) or "nn" in metrics or "accuracy" in metrics
    real_stats, data_id = image_stats(real_waves, model, real_key, persist=cache, keep_samples=keep,
                                      batch_size=batch_size)
    features, logits = model.extract(fake_waves, batch_size)
    # IS splits the clips in order: shuffle (seeded) so that class-sorted clips (a per-class folder) do not deflate it
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed))
    fake_stats = FeatureStats.from_features(features[order], logits[order], keep=True)
    scores = scores_from_stats(real_stats, fake_stats, feature_metrics, seed)
    share = class_histogram(fake_stats.logits, model.num_classes)
    scores["classes_covered"] = int((share >= 1 / (4 * model.num_classes)).sum())
    if "silence" in metrics:
        scores["near_silent"] = near_silent_share(fake.tensor, fake.sample_rate)
        scores["near_silent_real"] = near_silent_share(real.tensor, real.sample_rate)
    if "nn" in metrics:
        scores.update(nearest_neighbour(real_stats.features, fake_stats.features, seed=seed))
    if "accuracy" in metrics and fake.labels is not None:
        wanted = class_indices(fake.labels, class_names, model)
        scores["conditional_accuracy"] = (logits.argmax(1) == wanted).float().mean().item()
    scores["record"] = make_record(model, len(real), len(fake), data_id, reference_split, audio_format, seed)
    return scores


def is_audio_source(path: Path) -> bool:
    """True for a .wav file, an .npz holding an 'audio' array, or a folder with WAV files and no images."""
    from ganforge.data.audio import AUDIO_SUFFIXES, list_audio
    from ganforge.data.image_files import list_images

    path = Path(path)
    if path.is_dir():
        return bool(list_audio(path)) and not list_images(path)
    if path.suffix.lower() == ".npz" and path.is_file():
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as loaded:
                return "audio" in loaded.files
        except (OSError, ValueError):
            return False
    return path.suffix.lower() in AUDIO_SUFFIXES


def load_clips(path: Path, extractor: Extractor, limit: int | None = None) -> tuple[Audio, list[str]]:
    """Clips from a WAV folder (mono, at the extractor's rate and length, loudness kept; labels from sub-folders or
    '{label}_' names), a .wav or an .npz that `ganforge sample` wrote; with the class names of their labels."""
    from ganforge import media
    from ganforge.data.audio import load_audio

    path = Path(path)
    if path.is_dir():
        data = load_audio(str(path), extractor.sample_rate, extractor.length, "none", limit)
        return Audio(data.waves, data.sample_rate, data.labels), data.classes
    clips = media.read(path)
    if not isinstance(clips, Audio):
        raise GanforgeError(f"{path}: holds {clips.modality} samples, not audio")
    if limit is not None and len(clips) > limit:
        clips = clips.select(slice(None, None, len(clips) // limit)).select(slice(0, limit))
    return clips, []


def fit_audio_folder(folder: Path, out: Path, epochs: int, seed: int, log=print) -> dict:
    """Fit an audio classifier on a labelled WAV folder (at its first file's sample rate, clips of the power of two
    at or above one second, peak normalised), every 10th clip held out; returns the training report."""
    from ganforge.data.audio import load_audio
    from ganforge.metrics.audio_classifier import fit_audio_classifier

    probe = load_audio(str(folder), None, 1, "none", limit=1)
    length = 2 ** math.ceil(math.log2(probe.sample_rate))  # 8 kHz: 8192 samples, as WaveGAN's clips
    data = load_audio(str(folder), probe.sample_rate, length, "peak")
    if data.labels is None:
        raise GanforgeError(f"{folder}: fitting an audio extractor needs labels: one sub-folder per class, or "
                            "'{label}_' file-name prefixes (at least 2 classes)")
    held = torch.arange(len(data)) % 10 == 9
    return fit_audio_classifier(data.waves[~held], data.labels[~held], data.classes, out, data.sample_rate,
                                epochs=epochs, seed=seed, log=log,
                                holdout=(data.waves[held], data.labels[held]) if held.any() else None,
                                notes={"data": str(folder), "holdout": "every 10th clip (sorted by path)"})


def evaluate_audio_files(real: Path, fake: Path, metrics: str | None, extractor: str | None, n: int,
                         batch_size: int, seed: int) -> dict:
    """`ganforge evaluate REAL FAKE` for audio: WAV folders, .wav or .npz files; fake labels (sub-folders,
    '{label}_' names or the .npz labels) give conditional accuracy."""
    model = resolve_audio_extractor(extractor)
    real_clips, _ = load_clips(real, model, n)
    fake_clips, names = load_clips(fake, model, n)
    kind = {True: "wav folder", False: "npz/wav"}
    return evaluate_audio(fake_clips, real_clips, metrics, model, names, batch_size=batch_size, seed=seed,
                          reference_split=f"folder {Path(real).name}",
                          audio_format=f"real {kind[Path(real).is_dir()]}; fake {kind[Path(fake).is_dir()]}")


def evaluate_audio_run(model, n: int, metrics: str | None, extractor: str | None, batch_size: int, seed: int
                       ) -> dict:
    """`ganforge evaluate RUN` for an audio run: N clips (random classes when conditional) against its training
    clips."""
    fake = model.sample(n, seed=seed)
    real = Audio(type(model.family).load_data(model.config).as_float(), fake.sample_rate)
    return evaluate_audio(fake, real, metrics, extractor, model.classes, batch_size=batch_size, seed=seed,
                          reference_split="train", audio_format="tensor")
