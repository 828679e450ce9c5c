"""Normalizing flows: invertible layers (layers.py) shared by RealNVP (realnvp.py) and Glow.

Work in progress (issue 5): the layers and RealNVP (images: multi-scale with factor-out and
uniform dequantization in logit space; vectors: coupling stacks) exist with tests; Glow, the
`--temperature` option, the figures, docs/flows.md and the benchmarks come next.
"""
