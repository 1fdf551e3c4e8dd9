"""A multilayer perceptron on a short sequence of tokens: each token embedded, the
embeddings concatenated, hidden ReLU layers, a linear read-out (the "last layer" whose norm
the slingshot studies watch).

The fully connected network of the grokking-with-MLP and slingshot studies on algorithmic
data (a ∘ b = c from the two operand tokens), and of the sparse-parity studies (inputs as
they are, ``vocab = 0``).
"""

import math
from dataclasses import dataclass

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import ConfigError, check_nonnegative, check_positive_int
from iclab.models._interface import ParameterRolesModel, roles_by_path


@dataclass(frozen=True)
class TokenMLPConfig:
    """Args:
        tokens: input tokens per example (T).
        vocab: one-hot width of a token (V); the input is (T, V) and each token is embedded
            by one shared (V, embed) matrix. 0: the input is a (T,) or (T, D) array of
            features, flattened, with no embedding.
        embed: embedding width per token (with ``vocab`` > 0).
        features: input width per token when ``vocab`` = 0 (D; 1 for a (T,) input).
        hidden: widths of the hidden ReLU layers.
        out: output width (classes).
    """

    tokens: int = 2
    vocab: int = 0
    embed: int = 128
    features: int = 1
    hidden: tuple[int, ...] = (256,)
    out: int = 1

    def __post_init__(self):
        check_positive_int("model.tokens", self.tokens)
        check_nonnegative("model.vocab", self.vocab)
        check_positive_int("model.embed", self.embed)
        check_positive_int("model.features", self.features)
        check_positive_int("model.out", self.out)
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1
                                  for h in self.hidden):
            raise ConfigError("model.hidden", self.hidden,
                              "a comma-separated list of positive integers")

    @property
    def input_width(self) -> int:
        return self.tokens * (self.embed if self.vocab else self.features)


def _linear(key: PRNGKeyArray, fan_in: int, fan_out: int) -> tuple[Array, Array]:
    """PyTorch's ``nn.Linear`` initialisation: weight and bias from U(±1/√fan_in)."""
    kw, kb = jax.random.split(key)
    bound = 1 / math.sqrt(fan_in)
    return (jax.random.uniform(kw, (fan_out, fan_in), minval=-bound, maxval=bound),
            jax.random.uniform(kb, (fan_out,), minval=-bound, maxval=bound))


class TokenMLP(ParameterRolesModel):
    """x ↦ W_out ReLU(… ReLU(W_1 [E x_1; …; E x_T] + b_1) …) (see ``TokenMLPConfig``).

    The embedding E ~ N(0, 1) (``nn.Embedding``'s default); the hidden layers and the
    read-out (no bias) use ``nn.Linear``'s U(±1/√fan_in).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> config = TokenMLPConfig(tokens=2, vocab=5, embed=4, hidden=(8,), out=5)
        >>> model = TokenMLP(config, key=jax.random.key(0))
        >>> model(jax.nn.one_hot(jnp.array([1, 3]), 5)).shape
        (5,)
    """

    embedding: Float[Array, "v e"] | None
    weights: list
    biases: list
    read_out: Float[Array, "o h"]
    config: TokenMLPConfig = eqx.field(static=True)

    def __init__(self, config: TokenMLPConfig, *, key: PRNGKeyArray):
        keys = jax.random.split(key, len(config.hidden) + 2)
        self.config = config
        self.embedding = (jax.random.normal(keys[0], (config.vocab, config.embed))
                          if config.vocab else None)
        widths = (config.input_width, *config.hidden)
        layers = [_linear(k, a, b) for k, a, b in zip(keys[1:-1], widths[:-1], widths[1:],
                                                      strict=True)]
        self.weights = [w for w, _ in layers]
        self.biases = [b for _, b in layers]
        self.read_out = _linear(keys[-1], widths[-1], config.out)[0]

    def __call__(self, x: Float[Array, "t ..."]) -> Float[Array, " o"]:
        h = (x @ self.embedding).reshape(-1) if self.embedding is not None else x.reshape(-1)
        for w, b in zip(self.weights, self.biases, strict=True):
            h = jax.nn.relu(w @ h + b)
        return self.read_out @ h

    def parameter_roles(self):
        """embedding: embedding; hidden weights: mlp; their biases: bias; read_out:
        readout."""
        rule = lambda name: {"embedding": "embedding", "weights": "mlp", "biases": "bias",
                             "read_out": "readout"}[name.split(".")[0]]
        return roles_by_path(self, rule)

