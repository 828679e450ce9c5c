"""Normalizing flows: RealNVP (realnvp.py) and Glow (glow.py) with exact likelihoods.

layers.py holds the invertible layers both use (ActNorm, invertible 1x1 convolution, affine
coupling, squeeze) and their coupling networks; flow.py what every flow shares (the standard
normal base, uniform and variational dequantization, log_prob / loss / sample with temperature);
figures.py the pictures `genlab evaluate` writes. docs/flows.md explains the ideas.
"""
