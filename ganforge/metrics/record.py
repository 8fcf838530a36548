"""The evaluation record stored with every score, and the refusal to compare scores whose records differ."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ganforge.errors import GanforgeError


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
