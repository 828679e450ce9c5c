"""The RL family: agents that learn by acting in an environment (DQN, REINFORCE, PPO), trained
by the RL loop (genlab.training.rl) on `gym:NAME` environments (genlab.data.environments)."""
