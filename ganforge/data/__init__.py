"""Data: image sources loaded into memory, and shuffled batches on the training device."""

from ganforge.data.batches import TensorBatches
from ganforge.data.image_files import IMAGE_SUFFIXES, list_images, read_image
from ganforge.data.sources import ImageSet, load_images

__all__ = ["IMAGE_SUFFIXES", "ImageSet", "TensorBatches", "list_images", "load_images", "read_image"]
