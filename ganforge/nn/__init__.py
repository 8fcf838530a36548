"""Layers shared by the GAN families."""

from ganforge.nn.layers import NORMS, conv_block, init_dcgan_weights, norm_layer, spectral

__all__ = ["NORMS", "conv_block", "init_dcgan_weights", "norm_layer", "spectral"]
