"""ganforge: train, evaluate and use GANs on your own data."""

__version__ = "0.1.0"

from ganforge.api import GAN, load, train  # noqa: E402
from ganforge.config import RunConfig  # noqa: E402
from ganforge.errors import GanforgeError  # noqa: E402

__all__ = ["GAN", "GanforgeError", "RunConfig", "load", "train", "__version__"]
