"""Evaluation metrics. Each module sees only the model contract; nothing is imported here.

    fid.py               Frechet Inception Distance, streaming statistics, .npz files
    kid.py               Kernel Inception Distance (unbiased MMD, cubic kernel)
    inception_score.py   Inception Score (10 splits, float64)
    precision_recall.py  improved precision and recall (k = 3)
    ppl.py               Perceptual Path Length (StyleGAN protocol)
    likelihood.py        NLL, bits/dim, perplexity
    inception.py         the FID Inception-v3 (TF inception-2015-12-05) and its loaders
    vgg.py               VGG16/VGG19 with named layers (loss networks), LPIPS, fc2 features
    digits.py            genlab's own digit classifier: offline "FID (digits)", "IS (digits)"
    weights.py           pinned weight files: resolution, sha256, safe loading
    imageops.py          8-bit rounding, TF1 bilinear resize, grey <-> RGB
    features.py          the feature-extractor protocol, streaming extraction
    evaluate.py          `genlab evaluate --metrics` and `genlab fid`

See docs/metrics.md for what each metric measures, its protocol and its pitfalls.
"""
