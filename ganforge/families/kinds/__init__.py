"""Shared bases of families: the kinds of GAN game (noise to image, image to image, super-resolution)."""
