"""Audio generation: WaveNet (van den Oord et al. 2016) with fast generation (Paine et al. 2016).

wavenet.py holds the model (causal dilated convolutions, gated units, residual and skip
connections, mu-law softmax or discretized logistic mixture outputs, global and local
conditioning, the naive sampler); fast_generation.py the per-layer queues that make a new sample
cost O(layers). docs/audio.md explains the equations, the receptive field and the baselines.
"""
