"""The evaluation record stored with every score, and the refusal to compare scores whose records differ."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ganforge.errors import GanforgeError

# scores named after Inception: (name through Inception, name through any other network)
INCEPTION_NAMES = {"fid": ("FID", "FD"), "kid": ("KID", "KD"), "kid_std": ("KID std", "KD std"),
                   "is": ("IS", "IS"), "is_std": ("IS std", "IS std")}


@dataclass(frozen=True)
class EvalRecord:
    """Everything a score depends on besides the generator: two scores compare only if their records are equal."""

    extractor: str
    extractor_hash: str
    resize_filter: str
    n_real: int
    n_fake: int
    reference: str
    reference_split: str
    image_format: str
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)

    def score_name(self, metric: str) -> str:
        """How to name METRIC's score: 'FID' only through Inception, else e.g. 'FD (digits extractor)'."""
        names = INCEPTION_NAMES.get(metric)
        if names is None:
            return metric
        if self.extractor == "inception":
            return names[0]
        return f"{names[1]} ({self.extractor} {'classifier' if metric.startswith('is') else 'extractor'})"

    @classmethod
    def from_dict(cls, data: dict) -> EvalRecord:
        names = {f.name for f in fields(cls)}
        missing = names - data.keys()
        if missing:
            raise GanforgeError(f"evaluation record lacks {', '.join(sorted(missing))}")
        return cls(**{k: data[k] for k in names})


def compare(a: EvalRecord | dict, b: EvalRecord | dict) -> None:
    """Raise GanforgeError naming every field in which two evaluation records differ."""
    a = a if isinstance(a, EvalRecord) else EvalRecord.from_dict(a)
    b = b if isinstance(b, EvalRecord) else EvalRecord.from_dict(b)
    differ = [f"{f.name} {getattr(a, f.name)!r} vs {getattr(b, f.name)!r}"
              for f in fields(EvalRecord) if getattr(a, f.name) != getattr(b, f.name)]
    if differ:
        raise GanforgeError("scores are not comparable, evaluation records differ: " + "; ".join(differ))
