"""What instruments read from a model: abstract interfaces (Equinox's abstract/final pattern).

An instrument states the interface it needs and works on any model that implements it:
probes read ``ResidualStreamModel.residual_stream``, attention scores read
``AttentionPatternModel.attention_patterns``, per-layer read-outs and implicit weights read
``LayerReadoutModel.layer_predictions``. Interfaces are abstract modules; the models are
final classes that implement them; nothing concrete is overridden.

``LinearAttentionStack`` is an abstract base with concrete methods: a stack of layers
Δh = h M_l(h) whose prediction is −y_query (von Oswald et al. 2023's read-out). A final
class supplies ``n_layers`` and ``layer_map``; the residual stream, the per-layer read-outs
and the query-only forward pass come with it, written once.
"""

import abc
from dataclasses import dataclass

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class SequenceModel(eqx.Module):
    """A model on one token sequence (T, D_in); batches by ``jax.vmap``."""

    @abc.abstractmethod
    def __call__(self, tokens: Float[Array, "t d"]):
        """The model's output on one sequence."""


class ResidualStreamModel(SequenceModel):
    """A sequence model whose activations after the input and after every layer can be read."""

    @abc.abstractmethod
    def residual_stream(self, tokens: Float[Array, "t d"]) -> Float[Array, "layers+1 t w"]:
        """H⁽⁰⁾ (after the embedding) … H⁽ᴸ⁾, stacked: (L + 1, T, width)."""


class AttentionPatternModel(SequenceModel):
    """A sequence model whose attention weights can be read."""

    @abc.abstractmethod
    def attention_patterns(self, tokens: Float[Array, "t d"]) -> Float[Array, "layers h t t"]:
        """Each layer's per-head attention weights (row: query position, column: key)."""


class LayerReadoutModel(ResidualStreamModel):
    """A model of in-context regression whose prediction can be read after every layer."""

    @abc.abstractmethod
    def layer_predictions(self, tokens: Float[Array, "t d"]) -> Float[Array, " layers"]:
        """The read-out ŷ⁽ˡ⁾ after each layer l = 1..L."""


class QueryReadoutModel(LayerReadoutModel):
    """In-context regression on tokens e_i = (x_i, y_i) with the query last and its label
    slot 0: the prediction after layer l is −y_query of H⁽ˡ⁾ (von Oswald et al. 2023)."""

    def layer_predictions(self, tokens: Float[Array, "t d"]) -> Float[Array, " layers"]:
        return -self.residual_stream(tokens)[1:, -1, -1]


class LinearAttentionStack(QueryReadoutModel):
    """L layers h ← h + h M_l(h) on tokens e_i = (x_i, y_i) with the query last; ŷ is
    −y_query of the last layer (keys and values from the context only, so the last layer
    only needs the query row)."""

    n_layers: eqx.AbstractVar[int]

    @abc.abstractmethod
    def layer_map(self, layer: int, h: Float[Array, "t dim"]) -> Float[Array, "dim dim"]:
        """M_l with Δh = h M_l for layer ``layer`` on tokens h."""

    def residual_stream(self, tokens: Float[Array, "t dim"]) -> Float[Array, "layers+1 t dim"]:
        states = [tokens]
        for layer in range(self.n_layers):
            states.append(states[-1] + states[-1] @ self.layer_map(layer, states[-1]))
        return jnp.stack(states)

    def __call__(self, tokens: Float[Array, "t dim"]) -> Float[Array, ""]:
        h = tokens
        for layer in range(self.n_layers - 1):
            h = h + h @ self.layer_map(layer, h)
        query = h[-1] + h[-1] @ self.layer_map(self.n_layers - 1, h)
        return -query[-1]


class HeadWeightsModel(eqx.Module):
    """A model whose attention heads' projections can be read.

    ``head_weights`` gives, per layer, a dict of stacked per-head matrices with row-major
    projections (q = W_Q x, k = W_K x, v = W_V x for a token x of width D, and the head's
    output W_O v added to the residual stream):

        "q", "k": (H, d_k, D_qk),  "v": (H, d_v, D),  "o": (H, D, d_v),

    and "logit_scale", the factor on q·k in the attention logits (1/√d_k for softmax).
    """

    @abc.abstractmethod
    def head_weights(self) -> list[dict]:
        """Per layer: {"q", "k", "v", "o", "logit_scale"} (see the class docstring)."""


class HeadAblationModel(eqx.Module):
    """A model whose attention heads can be ablated: ``without_heads`` returns the model
    with those heads' outputs removed from the residual stream (zero ablation; Olsson et
    al. 2022's test that a head is what a behaviour rests on)."""

    @abc.abstractmethod
    def without_heads(self, layer: int, heads) -> "HeadAblationModel":
        """The model with heads ``heads`` (indices) of layer ``layer`` (0-based) removed."""


ROLES = ("embedding", "attention", "mlp", "readout", "norm", "bias", "state", "other")
"""What a parameter array is for: the groups of per-role weight decay (and of the
parametrisation schemes to come)."""


class StatefulModel(eqx.Module):
    """A model with state that training moves outside the gradient (σReparam's power
    iteration vectors, role "state"): the engine replaces the model by ``refreshed()``
    after every optimiser step, inside the compiled step, and the optimiser leaves the
    state arrays alone."""

    @abc.abstractmethod
    def refreshed(self) -> "StatefulModel":
        """The model with its state advanced by one training step."""


class ParameterRolesModel(eqx.Module):
    """A model that labels each parameter array with its role (one of ``ROLES``).

    ``parameter_roles`` returns a pytree of role strings with the structure of the model's
    arrays (``eqx.filter(model, eqx.is_array)``); it may be called on that filtered
    model too (the optimiser's masks are computed from the parameters alone).
    """

    @abc.abstractmethod
    def parameter_roles(self):
        """The role of every array: a pytree like ``eqx.filter(self, eqx.is_array)``."""


@dataclass(frozen=True)
class ForwardMultipliers:
    """Constant factors a parametrisation puts into a model's forward pass (all 1 in SP).

    Args:
        branch: on every residual branch, h ← h + branch · f(h) (depth-μP: L^(−½),
            CompleteP: L^(−1), with L relative to the base depth).
        logit: on the attention logits, over the usual 1/√d_k (μP's 1/d_k relative to the
            base head width d₀: √(d₀/d_k)).
        output: on the read-out's input, y = W_out (output · h) + b (μP: 1/m, m the
            read-out's fan-in relative to the base's; Yang & Hu's ``MuReadout``).
    """

    branch: float = 1.0
    logit: float = 1.0
    output: float = 1.0


class ScalableModel(ParameterRolesModel):
    """A model whose width and depth a parametrisation (``iclab.parametrisation``) scales.

    Besides its parameters' roles it says its depth (residual blocks), which arrays live
    inside a residual block, its attention head width, and it takes ``ForwardMultipliers``.
    Width is read from the arrays' shapes against a base model's.
    """

    multipliers: eqx.AbstractVar[ForwardMultipliers]

    @abc.abstractmethod
    def depth(self) -> int:
        """The number of residual blocks L."""

    @abc.abstractmethod
    def block_arrays(self):
        """A pytree of bools like ``parameter_roles()``: True for arrays in a residual
        block (their learning rates follow the depth rules of depth-μP and CompleteP)."""

    @abc.abstractmethod
    def init_exponents(self):
        """A pytree of floats like ``parameter_roles()``: b with the array's init std ∝
        m^(−b) in the width multiplier m (½: scaled by 1/√fan-in with a fan-in that grows
        with the width; 0: a fixed std, or a fan-in that does not grow)."""

    @abc.abstractmethod
    def head_width(self) -> int:
        """The attention head width d_k (0 for a model without attention)."""

    @abc.abstractmethod
    def with_multipliers(self, multipliers: ForwardMultipliers) -> "ScalableModel":
        """The same model with these forward multipliers."""


def replace_static(module: eqx.Module, **fields) -> eqx.Module:
    """A copy of ``module`` with static (non-array) fields replaced; arrays are shared.
    ``eqx.tree_at`` cannot reach static fields."""
    import copy

    new = copy.copy(module)
    for name, value in fields.items():
        if not hasattr(module, name):
            raise AttributeError(f"{type(module).__name__} has no field {name!r}")
        object.__setattr__(new, name, value)
    return new


def path_name(path) -> str:
    """A pytree key path as a stable dotted name, e.g. ``blocks.0.attn.w_q``
    (``jax.tree_util.keystr`` without brackets and quotes)."""
    parts = [str(k.idx) if hasattr(k, "idx") else str(getattr(k, "name", None) or
                                                      getattr(k, "key", None))
             for k in path]
    return ".".join(parts) or "value"


def roles_by_path(params, rule) -> object:
    """A pytree of roles from ``rule(dotted name) -> role`` over the arrays of ``params``
    (a model, its filtered arrays, or its abstract shapes; names as
    ``iclab.instruments.parameter_names``); every other leaf becomes None, so the result
    has the structure of ``eqx.filter(model, eqx.is_array)``."""
    import jax

    def label(path, leaf):
        if not hasattr(leaf, "shape"):
            return None
        name = path_name(path)
        role = rule(name)
        if role not in ROLES:
            raise ValueError(f"role {role!r} of {name} is not one of {ROLES}")
        return role

    return jax.tree_util.tree_map_with_path(label, params)


def require(model, interface: type, reader: str) -> None:
    """Raise a TypeError naming the interface ``reader`` needs if ``model`` lacks it."""
    if not isinstance(model, interface):
        raise TypeError(f"{reader} reads a {interface.__name__}; got {type(model).__name__}, "
                        f"which does not implement it (see iclab.models.{interface.__name__})")
