"""Policy-gradient fine-tuning of a language model with a KL penalty: REINFORCE with a
leave-one-out baseline (RLOO; Kool et al. 2019, "Buy 4 REINFORCE samples, get a baseline for
free!"; Ahmadian et al. 2024 for language models), penalised by the KL divergence to the frozen
model it starts from (Ziegler et al. 2019, "Fine-tuning language models from human
preferences").

The policy pi_theta is a trained language model (`genlab train pg-lm --init-from RUN` with a
gpt, lstm, gru or rnn run); pi_ref is a frozen copy of it. For every prompt x (the first
`prompt_length` tokens of a training window) the policy draws k continuations y_1 .. y_k of
`length` tokens at temperature 1, and each gets the penalised return

    R_i  = r(y_i) - beta * KL_i,      KL_i = sum_t [log pi_theta(y_it | x, y_i<t)
                                                    - log pi_ref(y_it | x, y_i<t)]

(KL_i: the sampled estimate of KL(pi_theta || pi_ref) over the sequence; r: a reward of the
decoded text, genlab.rl.rewards). The other k - 1 samples of the same prompt give each one's
baseline, b_i = mean_{j != i} R_j, which does not depend on y_i, so

    loss = -mean_i [ (R_i - b_i) * sum_t log pi_theta(y_it | x, y_i<t) ]

is an unbiased policy-gradient estimate with less variance (R_i - b_i held constant). Logged:
the reward, the KL (nats per sequence), R, the policy's entropy per token, and the reward of
the data's own continuation of the same prompts (`data_reward`: what the text itself scores).

It trains in the likelihood loop like any model: `loss(batch)` draws its samples from a
generator seeded off the global RNG, which the loop seeds and checkpoints, so a run resumes
exactly; the validation batches give val_reward and val_kl. The model is a
contract.TokenGenerator (its policy's `step`), so `genlab generate RUN` and `genlab sample RUN`
show what it writes after fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.contract import TokenGenerator
from genlab.data.base import batch_inputs
from genlab.rl.rewards import REWARDS
from genlab.token_assets import TokenizerAssets

LANGUAGE_MODELS = ("gpt", "lstm", "gru", "rnn")


@dataclass
class PolicyGradientLMConfig:
    vocab_size: int = 65  # from the data (the text's vocabulary)
    data_shape: tuple[int, ...] = (64,)  # (T,): the training windows the prompts come from
    base: str = "gpt"  # the registered language model being fine-tuned
    base_config: Any = None  # its config (a dict; set by --init-from): None = a new one
    reward: str = "keyword"  # genlab.rl.rewards.REWARDS
    keyword: str = "love"  # reward "keyword": the word to say more often
    line_length: int = 40  # reward "line_length": the target characters per line
    prompt_length: int = 16  # tokens of each window used as the prompt
    length: int = 48  # tokens drawn after it
    k: int = 4  # samples per prompt (the leave-one-out baseline needs 2 or more)
    kl_coef: float = 0.05  # beta
    temperature: float = 1.0  # of the samples the gradient is estimated from

    def validate(self) -> None:
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        if self.base not in LANGUAGE_MODELS:
            raise ValueError(f"base must be one of {', '.join(LANGUAGE_MODELS)}")
        if self.k < 2 or self.length < 1 or self.prompt_length < 1:
            raise ValueError(
                "k must be >= 2 (a leave-one-out baseline); length, prompt_length >= 1"
            )
        if self.kl_coef < 0 or self.temperature <= 0 or self.line_length < 1:
            raise ValueError("kl_coef must be >= 0, temperature > 0 and line_length >= 1")
        if self.data_shape[0] <= self.prompt_length:
            raise ValueError(
                f"the windows ({self.data_shape[0]} tokens) must be longer than prompt_length "
                f"{self.prompt_length}: set -o data.block_size="
                f"{self.prompt_length + self.length}"
            )


def _language_model(name: str, values: dict[str, Any]) -> nn.Module:
    from genlab.registry import config_from, model_class

    return model_class(name)(config_from(name, values))


class PolicyGradientLM(TokenizerAssets, nn.Module):
    Config = PolicyGradientLMConfig
    data_kinds = ("text",)
    starts_from: ClassVar[tuple[str, ...]] = LANGUAGE_MODELS  # contract.WarmStartable
    optimises: ClassVar[str] = "return"  # contract.SurrogateObjective: the loss is not it
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 300,
        "batch_size": 8,  # prompts per step (x k samples)
        "lr": 1e-4,
        "warmup_steps": 10,
        "log_every": 10,
        "eval_every": 50,
        "eval_batches": 2,
        "sample_every": 100,
        "sample_n": 4,
        "checkpoint_every": 50,
    }
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"model_config": {"k": 8, "length": 128}, "train": {"batch_size": 32}}
    }

    @classmethod
    def data_defaults_for(cls, config: PolicyGradientLMConfig) -> dict[str, Any]:
        """Windows of a prompt and a continuation: the data's own continuation is scored too
        (data_reward), for comparison."""
        return {"block_size": config.prompt_length + config.length}

    def __init__(self, config: PolicyGradientLMConfig):
        super().__init__()
        config.validate()
        self.config = config
        values = dict(config.base_config or {})
        values.setdefault("vocab_size", config.vocab_size)
        values.setdefault("block_size", config.prompt_length + config.length)
        self.policy = _language_model(config.base, values)
        self.reference = _language_model(config.base, values).requires_grad_(False)
        self.reference.load_state_dict(self.policy.state_dict())
        self._check_lengths()

    def _check_lengths(self) -> None:
        block = self.policy.block_size
        if block is not None and block < self.config.prompt_length + self.config.length:
            raise ValueError(
                f"the model reads {block} tokens at most: prompt_length + length must fit "
                f"(got {self.config.prompt_length} + {self.config.length})"
            )

    # --- contract.WarmStartable ------------------------------------------------------------------
    def warm_start(self, source: Any) -> None:
        """Start the policy and the reference from a trained language model (its config and
        weights)."""
        from genlab.config import to_dict
        from genlab.registry import model_class

        name = next((n for n in LANGUAGE_MODELS if isinstance(source, model_class(n))), None)
        if name is None or not isinstance(source, TokenGenerator):
            raise ValueError("pg-lm starts from a language model run (gpt, lstm, gru, rnn)")
        if source.config.vocab_size != self.config.vocab_size:
            raise ValueError(
                f"its vocabulary has {source.config.vocab_size} tokens and the data's "
                f"{self.config.vocab_size}: train on the data it was trained on"
            )
        self.config.base, self.config.base_config = name, to_dict(source.config)
        self.policy = _language_model(name, self.config.base_config)
        self.policy.load_state_dict(source.state_dict())
        self.reference = _language_model(name, self.config.base_config).requires_grad_(False)
        self.reference.load_state_dict(source.state_dict())
        self.tokenizer = source.tokenizer  # until the data's (the same text's) is bound
        self._check_lengths()

    # --- contract.TokenGenerator: the policy writes -------------------------------------------
    @property
    def block_size(self) -> int | None:
        return self.policy.block_size

    def step(self, ids: Tensor, cache: Any = None) -> tuple[Tensor, Any]:
        return self.policy.step(ids, cache)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n texts of a window's length (T tokens) after token 0, drawn from the policy."""
        device = next(self.parameters()).device
        prompt = torch.zeros(n, 1, dtype=torch.long, device=device)
        return self.draw(prompt, generator, self.config.data_shape[0])

    def draw(self, prompts: Tensor, generator: torch.Generator | None, tokens: int) -> Tensor:
        """`tokens` tokens (N, tokens) after each prompt (N, P), at the config's temperature."""
        from genlab.generation import GenerationConfig, generate_ids

        settings = GenerationConfig(max_new_tokens=tokens, temperature=self.config.temperature)
        drawn = generate_ids(self.policy, prompts, settings, generator=generator)
        return torch.stack(list(drawn), 1)

    # --- the objective ----------------------------------------------------------------------
    def rewards(self, tokens: Tensor) -> Tensor:
        """r(y) of each continuation (N, length), decoded with the bound tokenizer."""
        if self.tokenizer is None:
            raise ValueError(
                "pg-lm fine-tunes a trained language model and scores its text: give "
                "--init-from RUN (a gpt, lstm, gru or rnn run)"
            )
        score = REWARDS[self.config.reward]
        texts = [self.tokenizer.decode(row) for row in tokens.tolist()]
        return torch.tensor([score(text, self.config) for text in texts], device=tokens.device)

    def token_log_probs(self, model: nn.Module, sequence: Tensor) -> tuple[Tensor, Tensor]:
        """log p(y_t | ...) of the last `length` tokens of `sequence` (N, P + length) under
        `model`, (N, length), and the logits they come from."""
        logits = model.logits(sequence[:, :-1])[:, -self.config.length :].float()
        chosen = sequence[:, -self.config.length :]
        return F.log_softmax(logits, -1).gather(-1, chosen[..., None])[..., 0], logits

    def loss(self, batch: Any) -> dict[str, Tensor]:
        c = self.config
        windows = batch_inputs(batch)
        prompts = windows[:, : c.prompt_length].repeat_interleave(c.k, 0)
        seed = int(torch.randint(2**62, ()))  # from the global RNG: seeded and resumed
        generator = torch.Generator(device=prompts.device).manual_seed(seed)
        with torch.no_grad():
            tokens = self.draw(prompts, generator, c.length)
            data_reward = self.rewards(windows[:, c.prompt_length : c.prompt_length + c.length])
        sequence = torch.cat([prompts, tokens], 1)
        log_probs, logits = self.token_log_probs(self.policy, sequence)
        with torch.no_grad():
            reference, _ = self.token_log_probs(self.reference, sequence)
        kl = (log_probs.detach() - reference).sum(1)  # (N,) nats per sequence
        reward = self.rewards(tokens)
        returns = (reward - c.kl_coef * kl).view(-1, c.k)  # (prompts, k)
        advantage = leave_one_out(returns).reshape(-1)
        loss = -(advantage * log_probs.sum(1)).mean()
        entropy = torch.distributions.Categorical(logits=logits.detach()).entropy().mean()
        return {
            "loss": loss,
            "reward": reward.mean(),
            "kl": kl.mean(),
            "return": returns.mean(),
            "entropy": entropy,
            "data_reward": data_reward.mean(),
        }


def leave_one_out(returns: Tensor) -> Tensor:
    """R_i - mean_{j != i} R_j within each row (prompts, k): each sample's advantage over the
    other samples of its prompt."""
    k = returns.shape[1]
    return returns - (returns.sum(1, keepdim=True) - returns) / (k - 1)
