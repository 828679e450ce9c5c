"""The music family: MusicVAE and composing with any music model (genlab compose)."""
