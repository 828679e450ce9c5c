"""Normalizing flows: invertible layers (layers.py) shared by RealNVP and Glow.

Work in progress (issue 5): the layers and their tests exist; the RealNVP and Glow models, the
vector flows for toy2d, dequantization and the benchmarks come next.
"""
