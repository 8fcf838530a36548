"""Data: image sources loaded into memory, and shuffled batches on the training device."""

from ganforge.data.batches import TensorBatches
from ganforge.data.sources import ImageSet, list_images, load_images, read_image, to_float

__all__ = ["ImageSet", "TensorBatches", "list_images", "load_images", "read_image", "to_float"]
