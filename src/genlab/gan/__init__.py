"""Generative adversarial networks and the adversarial loop (`genlab.gan.train`).

One file per paper: dcgan.py (Radford et al. 2016), wgan.py (Arjovsky et al. 2017),
wgan_gp.py (Gulrajani et al. 2017), cgan.py (Mirza & Osindero 2014; projection discriminator of
Miyato & Koyama 2018), stylegan.py (Karras et al. 2019/2020, StyleGAN2 layers). Shared pieces:
losses.py (adversarial losses, gradient penalty, R1, the discriminator-input `Tricks`) and
augment.py (DiffAugment).

What every GAN here keeps, besides the model contract (genlab.contract), and all that the
adversarial loop (genlab.gan.train) reads of a model:
- `self.generator` and `self.discriminator` hold all parameters (two optimizers, EMA of G);
- `discriminator_loss(batch, tricks, step)` and `generator_loss(batch, tricks, step)` return
  dicts with "loss" (plus logged terms: "d_real"/"d_fake" are the mean logits); `step` counts
  the updates that network has had, for lazy regularization; `tricks(x)` is applied to every
  image the discriminator sees;
- `discriminator_won(d_loss) -> bool`: whether this D loss means D has won outright (~0 for a
  loss with a floor; never for a Wasserstein critic): the loop's collapse test;
- `loss(batch)`: evaluation only (D and G losses without penalties), which the loop reports on
  the validation data;
- images live in [-1, 1] inside the model, samples come out in [0, 1];
- `sample_latent(n, generator=)` and a deterministic `generate(z)` (the PPL/interpolation hooks),
  with `decode_latent(z)` where `sample` draws z only (contract.LatentSampler); StyleGAN also
  `mapping(z)` and `synthesis(w)`;
- a contract.CriticHook `after_discriminator_step()` where a model must act after every D
  update (WGAN's weight clipping);
- `sample_kind` ("image" or "vector", from `config.data_shape`) where it trains on both.
Each model holds the networks it shares (genlab.gan.dcgan's builders) rather than inheriting
another model.
"""
