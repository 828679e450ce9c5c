"""Variational autoencoders (Kingma & Welling 2014) with an IWAE bound on log p(x)."""

from genlab.vae.vae import VAE, VAEConfig

__all__ = ["VAE", "VAEConfig"]
