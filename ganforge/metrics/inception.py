"""The FID InceptionV3 (TF 2015-12-05 graph ported by pytorch-fid): pool3 2048-d features, 1008-way logits.

The blocks differ from torchvision's ImageNet InceptionV3 in two ways (pytorch-fid's FIDInception*): average pools
exclude padding from the count, and the last block max-pools its pool branch. Module names equal torchvision's, so
pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` state dict loads by key.
"""
from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor
from torchvision.models import inception_v3
from torchvision.models.inception import InceptionA, InceptionC, InceptionE

from ganforge.errors import GanforgeError
from ganforge.metrics.extractors import Extractor, cache_dir, file_hash

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"


def _avg_pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(InceptionA):
    def _forward(self, x: Tensor) -> list[Tensor]:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(_avg_pool(x))]


class FIDInceptionC(InceptionC):
    def _forward(self, x: Tensor) -> list[Tensor]:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        return [self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(_avg_pool(x))]


class FIDInceptionE(InceptionE):
    """Mixed_7b pools with an average that excludes padding; Mixed_7c (max_pool=True) with a max pool."""

    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__(in_channels)
        self.max_pool = max_pool

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return [self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(pooled)]


class FIDInceptionV3(Extractor):
    """InceptionV3 for FID/KID/IS; inputs in [-1, 1] are resized bilinearly to 299 px without antialiasing."""

    name = "inception"
    resolution = 299
    channels = 3
    resize_filter = "bilinear@299 (pytorch-fid)"
    num_features = 2048
    antialias = False

    def __init__(self, weights_hash: str = "random"):
        super().__init__()
        self.weights_hash = weights_hash
        self.classes = [str(i) for i in range(1008)]
        net = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
        net.Mixed_5b = FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        net.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        for key in ("AuxLogits", "dropout", "avgpool"):
            net._modules.pop(key, None)
        # register the torchvision modules on self so state-dict keys are exactly pytorch-fid's
        for key, module in net.named_children():
            self.add_module(key, module)

    def embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for key in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                    "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, key)(x)
        features = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        # the "unbiased" logits (no fc bias) that torch-fidelity and torchmetrics use for the Inception Score
        return features, features @ self.fc.weight.T


def weight_candidates() -> list[Path]:
    """Where the weights file is looked for, in order."""
    found = [Path(os.environ["GANFORGE_INCEPTION_WEIGHTS"])] if os.environ.get("GANFORGE_INCEPTION_WEIGHTS") else []
    return found + [cache_dir() / WEIGHTS_FILE, Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE]


def find_weights(download: bool | None = None) -> Path:
    """A local copy of the FID Inception weights, downloading to the cache once when online."""
    for path in weight_candidates():
        if path.is_file():
            return path
    if download is None:
        download = os.environ.get("GANFORGE_OFFLINE", "") in ("", "0")
    target = cache_dir() / WEIGHTS_FILE
    how = (f"download {WEIGHTS_URL} and put it at {target} (or set GANFORGE_INCEPTION_WEIGHTS, "
           f"or pass --extractor PATH.pth)")
    if not download:
        raise GanforgeError(f"FID Inception weights not found and downloads are off: {how}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".inception.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(WEIGHTS_URL, timeout=30) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, target)
    except OSError as error:
        raise GanforgeError(f"FID Inception weights not found and the download failed ({error}): {how}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def load_inception(path: str | Path | None = None, download: bool | None = None) -> FIDInceptionV3:
    """The FID InceptionV3 with weights from PATH (.pth state dict or .safetensors), else from the cache."""
    path = Path(path).expanduser() if path is not None else find_weights(download)
    if not path.is_file():
        raise GanforgeError(f"Inception weights file {path} does not exist")
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a truncated download or a non-state-dict file
            raise GanforgeError(f"cannot read Inception weights {path}: {error}") from None
    model = FIDInceptionV3(weights_hash=file_hash(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise GanforgeError(f"{path} is not an FID InceptionV3 state dict "
                            f"({len(missing)} missing keys, {len(unexpected)} unexpected)")
    return model.eval()
