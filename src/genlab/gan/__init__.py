"""Generative adversarial networks and the adversarial loop (`genlab.gan.train`).

One file per paper: dcgan.py (Radford et al. 2016), wgan.py (Arjovsky et al. 2017),
wgan_gp.py (Gulrajani et al. 2017), cgan.py (Mirza & Osindero 2014; projection discriminator of
Miyato & Koyama 2018), stylegan.py (Karras et al. 2019/2020, StyleGAN2 layers). Shared pieces:
losses.py (adversarial losses, gradient penalty, R1, the discriminator-input `Tricks`) and
augment.py (DiffAugment).

What every GAN here keeps, besides the model contract (genlab.contract):
- `self.generator` and `self.discriminator` hold all parameters (two optimizers, EMA of G);
- `discriminator_loss(batch, tricks, step)` and `generator_loss(batch, tricks, step)` return
  dicts with "loss" (plus logged terms: "d_real"/"d_fake" are the mean logits); `step` counts
  the updates that network has had, for lazy regularization; `tricks(x)` is applied to every
  image the discriminator sees;
- `loss(batch)`: evaluation only (D and G losses without penalties);
- images live in [-1, 1] inside the model, samples come out in [0, 1];
- `sample_latent(n, generator=)` and a deterministic `generate(z)` (the PPL/interpolation hooks),
  StyleGAN also `mapping(z)` and `synthesis(w)`.
- optional `after_discriminator_step()`: called after every D update (WGAN's weight clipping).
- `config.loss` names the adversarial loss (genlab.gan.losses.LOSSES); the loop's collapse test
  uses it, since a Wasserstein critic's loss has no floor.
"""
