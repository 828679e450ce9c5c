"""Image to image: neural style transfer (Gatys, fast style transfer, AdaIN) and
super-resolution (SRCNN, ESPCN, SRResNet, SRGAN), one paper per file (docs/style-transfer.md,
docs/super-resolution.md)."""
