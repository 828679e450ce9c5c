"""Shared training machinery: the likelihood-style loop, checkpoints, EMA, schedules, logging,
and DDP. Nothing here imports a specific model."""
