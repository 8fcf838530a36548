"""Samples and their files: typed batches per modality (image, video, audio, tokens), the one uint8 <-> [-1, 1]
conversion, and one writer per format, chosen by `save(samples, path)` from the modality and the path's suffix.

    samples = media.wrap(family.generate(generator, inputs), family.capabilities.modality, **family.sample_info())
    media.save(samples, "grid.png", zoom=4)
"""

from ganforge.media.batches import Audio, Images, Samples, Tokens, Video, concat, from_uint8, to_uint8, wrap
from ganforge.media.io import FORMATS, PREVIEW, check_format, formats, read, save, save_preview

__all__ = ["Audio", "FORMATS", "Images", "PREVIEW", "Samples", "Tokens", "Video", "check_format", "concat", "formats",
           "from_uint8", "read", "save", "save_preview", "to_uint8", "wrap"]
