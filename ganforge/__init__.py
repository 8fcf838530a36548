"""ganforge: train, evaluate and use GANs on your own data."""

__version__ = "0.1.0"

# the public names are imported on first use, so that `ganforge --help` and `import ganforge.config` stay free of torch
_LAZY = {"GAN": "ganforge.api", "load": "ganforge.api", "train": "ganforge.api", "RunConfig": "ganforge.config",
         "GanforgeError": "ganforge.errors"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["GAN", "GanforgeError", "RunConfig", "load", "train", "__version__"]
