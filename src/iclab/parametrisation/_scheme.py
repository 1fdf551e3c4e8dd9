"""SP, NTK, μP, depth-μP and CompleteP as one explicit object.

A ``Parametrisation`` (a frozen config) compares a ``ScalableModel`` with the same model at
its base shape and returns a ``Scaling``: for every parameter array its class, width and
depth multipliers, and its init, learning-rate, weight-decay and Adam-ε multipliers, plus
the forward multipliers (residual branch, attention logits, read-out). Everything is
relative to the base: at the base shape every scheme is exactly SP.

Classes (Yang & Hu's; inferred from the model's roles and the shapes against the base):

    input   embedding-like: finite fan-in, the width is the fan-out (role "embedding")
    hidden  a weight with two width axes (roles "attention", "mlp", "other" with ndim ≥ 2)
    output  the read-out weight: the width is the fan-in (role "readout", ndim ≥ 2)
    vector  biases and norm parameters along the width (roles "bias", "norm")
    fixed   no width axis (e.g. the read-out bias): never rescaled
    state   not a parameter (σReparam's vectors): never rescaled

Width multiplier m (per array): the fan-in ratio to the base (the last axis, Equinox's
(out, in) layout) for hidden and output arrays, the width axis' ratio for input and vector
arrays. Depth multiplier r = L / L₀ (residual blocks). α: 0 for SP, NTK and μP, ½ for
depth-μP, 1 for CompleteP.

Multipliers (relative to the base; "block" = inside a residual block):

    scheme    class    init std        Adam lr            Adam ε          SGD lr
    SP        all      1               1                  1               1
    NTK       hidden   m^(b−½)         m^(−½)             m^(½)           m^(−1)
    NTK       output   m^(b−½)         m^(−½)             m^(½)           m^(−1)
    μP (all)  hidden   m^(b−½)         m^(−1) · r^(α−1)*  m_N^(−1) r^(−α) (m_out/m_in) r^(2α−1)*
    μP (all)  output   m^(b)           1                  m_N^(−1) r^(−α) m
    μP (all)  input    m^(b)           1                  m_N^(−1) r^(−α) m
    μP (all)  vector   m^(b)           r^(α−1)*           m_N^(−1) r^(−α) m · r^(2α−1)*

    ("μP (all)": μP, depth-μP and CompleteP; * depth-μP and CompleteP, in a residual block
    only (plain μP has no depth rule, α = 0); m_N is the hidden width multiplier; b is the
    model's own init exponent, std ∝ m^(−b), which the model declares
    (``ScalableModel.init_exponents``): a fan-in init (b = ½) keeps its hidden weights, a
    fixed-std init (b = 0) gets μP's 1/√m.)

Forward: branch r^(−α); μP family logits √(d₀/d) (1/d attention, exact at the base head
width d₀) and read-out input 1/m (``MuReadout``: with the read-out stored at its base std,
its effective variance ∝ 1/fan_in²). NTK is written in this "SP form" (the effective
weights of W = w/√fan_in, w ~ N(0, 1), trained directly): for Adam on w with ε, the
effective step is η/√fan_in · m̂/(√v̂ + ε√fan_in), hence its lr and ε columns.

Weight decay: ``weight_decay="scaled"`` multiplies λ by 1 / (the width part of the lr
multiplier), so that η_p λ_p does not change with width (``mup``'s default and the
CompleteP code: λ·m_N for hidden weights under Adam); "fixed" keeps λ (nanoGPT-mup
master). The same multiplier is used for decoupled decay (AdamW: θ ← θ − η_p(u + λ_p θ))
and for coupled L2 (λ_p θ added to the gradient); for L2 under Adam the sources give no
width rule, and this one is not verified.

Tied embeddings: a matrix shared by read-in and read-out takes the embedding role (input
class: init and Adam lr unchanged) and the read-out's 1/m forward multiplier carries μP's
output scaling (nanoGPT-mup); no √m rescale of the shared matrix (which grows the
embedding's init with width, microsoft/mup#55).

References:
    Yang & Hu. "Tensor Programs IV: Feature learning in infinite-width neural networks",
    ICML 2021 (abc-parametrisations, μP); Yang et al. "Tensor Programs V", 2022 (μTransfer,
    ``microsoft/mup``); Jacot et al. "Neural tangent kernel", NeurIPS 2018 (NTK);
    Yang et al. "Tensor Programs VI: Feature learning in infinite-depth neural networks",
    ICLR 2024, and Bordelon et al. "Depthwise hyperparameter transfer in residual
    networks", ICLR 2024 (depth-μP, 1/√L branches); Dey et al. "Don't be lazy: CompleteP
    enables compute-efficient deep transformers", 2025 (α = 1; the nanoGPT-mup
    ``completep`` code for the depth rules and ε); Everett et al. "Scaling exponents
    across parameterizations and optimizers", ICML 2024 (ε).
"""

import fnmatch
import math
import re
from dataclasses import dataclass, field

import equinox as eqx
import jax
import numpy as np

from iclab._errors import ConfigError, check_choice
from iclab.models._interface import ForwardMultipliers, ScalableModel, path_name

SCHEMES = ("sp", "ntk", "mup", "depth_mup", "completep")
OPTIMIZERS = ("adam", "sgd")
DECAY_RULES = ("scaled", "fixed")
CLASSES = ("input", "hidden", "output", "vector", "fixed", "state")
FIELDS = ("init", "lr", "wd", "eps")
DEFAULT_ALPHA = {"sp": 0.0, "ntk": 0.0, "mup": 0.0, "depth_mup": 0.5, "completep": 1.0}
MU_FAMILY = ("mup", "depth_mup", "completep")
DEPTH_SCHEMES = ("depth_mup", "completep")


@dataclass(frozen=True)
class ArrayScaling:
    """One parameter array's row of the role table."""

    name: str
    shape: tuple[int, ...]
    role: str
    cls: str
    m_in: float
    m_out: float
    width: float
    in_block: bool
    init: float
    lr: float
    wd: float
    eps: float


@dataclass(frozen=True)
class Scaling:
    """What a parametrisation does to one model: per-array multipliers and the forward
    multipliers. ``initialise`` applies the init and forward multipliers to a model of the
    same shapes; ``lr``, ``wd`` and ``eps`` are pytrees of floats for the optimiser
    (``iclab.engine.make_optimizer(..., scaling=)``)."""

    scheme: str
    optimizer: str
    alpha: float
    width: float
    depth: float
    forward: ForwardMultipliers
    rows: tuple[ArrayScaling, ...]
    treedef: object = field(repr=False)

    def tree(self, name: str):
        """The ``name`` multipliers ("init", "lr", "wd" or "eps") as a pytree of floats
        shaped like ``eqx.filter(model, eqx.is_array)``."""
        check_choice("field", name, FIELDS)
        return jax.tree_util.tree_unflatten(self.treedef, [getattr(r, name) for r in self.rows])

    @property
    def lr(self):
        return self.tree("lr")

    @property
    def wd(self):
        return self.tree("wd")

    @property
    def eps(self):
        return self.tree("eps")

    def initialise(self, model: ScalableModel) -> ScalableModel:
        """``model`` (of the shapes this scaling was made for) with every array times its
        init multiplier and the forward multipliers set; traceable (inside ``jit``)."""
        params, static = eqx.partition(model, eqx.is_array)
        leaves, treedef = jax.tree_util.tree_flatten(params)
        if len(leaves) != len(self.rows) or any(
                tuple(a.shape) != r.shape for a, r in zip(leaves, self.rows, strict=True)):
            raise ValueError("initialise: the model's arrays are not those this Scaling "
                             "was made for (build it from a model of the same shapes)")
        leaves = [a if r.init == 1.0 else a * r.init
                  for a, r in zip(leaves, self.rows, strict=True)]
        model = eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static)
        return model.with_multipliers(self.forward)

    def table(self):
        """The role table: one row per array (pandas DataFrame)."""
        import pandas as pd

        frame = pd.DataFrame([r.__dict__ for r in self.rows])
        frame["shape"] = frame["shape"].map(lambda s: "×".join(map(str, s)))
        return frame.rename(columns={"cls": "class"})

    def describe(self) -> str:
        """The role table as text, with the forward multipliers."""
        head = (f"{self.scheme} ({self.optimizer}), α = {self.alpha:g}, width × "
                f"{self.width:g}, depth × {self.depth:g}; forward: branch "
                f"{self.forward.branch:.4g}, logits {self.forward.logit:.4g}, read-out "
                f"{self.forward.output:.4g}")
        return head + "\n" + self.table().to_string(index=False, float_format="%.4g")


def _parse_override(text: str) -> tuple[str, str, float]:
    match = re.fullmatch(r"([^:]+):(\w+)=(.+)", text)
    if match is None or match.group(2) not in FIELDS:
        raise ConfigError("parametrisation.overrides", text,
                          f"'NAME-GLOB:FIELD=VALUE' with FIELD one of {FIELDS}")
    try:
        value = float(match.group(3))
    except ValueError:
        raise ConfigError("parametrisation.overrides", text, "a number after '='") from None
    return match.group(1), match.group(2), value


@dataclass(frozen=True)
class Parametrisation:
    """A width/depth parametrisation scheme (see the module docstring for the table).

    Args:
        scheme: "sp", "ntk", "mup", "depth_mup" (μP + 1/√L branches) or "completep"
            (μP + 1/L branches).
        optimizer: "adam" (Adam and AdamW) or "sgd": the learning-rate rules differ.
        alpha: the depth exponent of the residual branches, L^(−α); −1: the scheme's (0,
            ½, 1); depth_mup and completep accept any α in [½, 1].
        weight_decay: "scaled" (η_p λ_p independent of width) or "fixed" (λ unchanged).
        scale_eps: μP family under Adam: ε × m_N^(−1) r^(−α) (the CompleteP code).
        overrides: "NAME-GLOB:FIELD=VALUE" entries that replace a computed multiplier,
            e.g. "read_out.weight:init=0" (zero-init read-out, recommended by ``mup``).

    Examples:
        >>> import jax
        >>> from iclab.models import GPT, GPTConfig
        >>> base = GPT(GPTConfig(dim_in=3, width=16, layers=2, heads=2), key=jax.random.key(0))
        >>> wide = GPT(GPTConfig(dim_in=3, width=64, layers=2, heads=2), key=jax.random.key(0))
        >>> s = Parametrisation("mup").scale(wide, base)
        >>> row = {r.name: r for r in s.rows}["blocks.0.qkv.weight"]
        >>> row.cls, row.lr, s.forward.output
        ('hidden', 0.25, 0.25)
    """

    scheme: str = "sp"
    optimizer: str = "adam"
    alpha: float = -1.0
    weight_decay: str = "scaled"
    scale_eps: bool = True
    overrides: tuple[str, ...] = ()

    def __post_init__(self):
        check_choice("parametrisation.scheme", self.scheme, SCHEMES)
        check_choice("parametrisation.optimizer", self.optimizer, OPTIMIZERS)
        check_choice("parametrisation.weight_decay", self.weight_decay, DECAY_RULES)
        if self.alpha != -1.0:
            if self.scheme not in ("depth_mup", "completep"):
                raise ConfigError("parametrisation.alpha", self.alpha,
                                  f"-1 for scheme {self.scheme} (only depth_mup and "
                                  "completep have a depth exponent)")
            if not 0.5 <= self.alpha <= 1.0:
                raise ConfigError("parametrisation.alpha", self.alpha, "-1 or in [0.5, 1]")
        for text in self.overrides:
            _parse_override(text)

    @property
    def depth_exponent(self) -> float:
        return DEFAULT_ALPHA[self.scheme] if self.alpha == -1.0 else self.alpha

    def scale(self, model: ScalableModel, base: ScalableModel,
              delta: ScalableModel | None = None) -> Scaling:
        """The scaling of ``model`` against ``base`` (the same architecture at the base
        width and depth).

        Args:
            model: the model to parametrise (its shapes are read).
            base: the base model (its shapes are read; arrays or ``jax.ShapeDtypeStruct``).
            delta: optional, a model that differs from ``base`` in width only, to tell the
                width axes apart when ``model`` has the base shapes (``mup``'s delta);
                without it the classes come from the roles and the multipliers are 1.
        """
        for which, m in (("model", model), ("base", base)):
            if not isinstance(m, ScalableModel):
                raise TypeError(f"Parametrisation.scale reads a ScalableModel; the {which} "
                                f"is a {type(m).__name__} (see iclab.models.ScalableModel)")
        alpha = self.depth_exponent
        depth = model.depth() / base.depth() if base.depth() else 1.0
        entries = _arrays(model)
        base_arrays = {name: a for name, a, _, _ in _arrays(base)}
        delta_arrays = None if delta is None else {n: a for n, a, _, _ in _arrays(delta)}
        exponents = jax.tree_util.tree_leaves(model.init_exponents())
        shapes = []
        for name, array, _, _ in entries:
            ref = _lookup(base_arrays, name)
            ratios = _ratios(array.shape, ref.shape, name)
            axes = ratios if delta is None else _ratios(
                _lookup(delta_arrays, name).shape, ref.shape, name)
            shapes.append((ratios, axes))
        known = any(r != 1.0 for _, axes in shapes for r in axes)
        pre = []
        for (name, array, role, in_block), (ratios, axes), b in zip(
                entries, shapes, exponents, strict=True):
            cls = _classify(name, role, array.ndim, [r != 1.0 for r in axes], known)
            m_in = ratios[-1] if array.ndim else 1.0
            m_out = ratios[0] if array.ndim else 1.0
            width = m_in if cls in ("hidden", "output") else (
                float(np.prod(ratios)) if cls in ("input", "vector") else 1.0)
            pre.append((name, array, b, role, cls, m_in, m_out, width, in_block))
        hidden = [p[7] for p in pre if p[4] == "hidden"]
        m_n = max(hidden) if hidden else max([p[7] for p in pre] + [1.0])
        rows = [self._row(name, array, b, role, cls, m_in, m_out, width, in_block,
                          depth, alpha, m_n)
                for name, array, b, role, cls, m_in, m_out, width, in_block in pre]
        rows = self._overridden(rows)
        readout = [r.width for r in rows if r.cls == "output"]
        mu = self.scheme in MU_FAMILY
        d, d0 = model.head_width(), base.head_width()
        forward = ForwardMultipliers(
            branch=depth ** (-alpha),
            logit=math.sqrt(d0 / d) if mu and d and d0 else 1.0,
            output=1.0 / readout[0] if mu and readout else 1.0)
        treedef = jax.tree_util.tree_structure(eqx.filter(model, _is_array_like))
        return Scaling(self.scheme, self.optimizer, alpha, m_n, depth, forward, tuple(rows),
                       treedef)

    def _row(self, name, array, b, role, cls, m_in, m_out, width, in_block, depth, alpha,
             m_n) -> ArrayScaling:
        mu, adam = self.scheme in MU_FAMILY, self.optimizer == "adam"
        init = lr_width = lr_depth = eps = 1.0
        if cls in ("input", "hidden", "output", "vector") and self.scheme != "sp":
            target = 0.5 if cls == "hidden" or (cls == "output" and not mu) else 0.0
            init = width ** (b - target)
            if self.scheme == "ntk" and cls in ("hidden", "output"):
                lr_width = width ** -0.5 if adam else 1.0 / width
                eps = math.sqrt(width) if adam else 1.0
            elif mu and adam:
                lr_width = 1.0 / width if cls == "hidden" else 1.0
            elif mu:
                lr_width = m_out / m_in if cls == "hidden" else width
            if self.scheme in DEPTH_SCHEMES and in_block and cls in ("hidden", "vector"):
                lr_depth = depth ** (alpha - 1) if adam else depth ** (2 * alpha - 1)
        if mu and adam and self.scale_eps and cls != "state":
            eps = (1.0 / m_n) * depth ** (-alpha)
        wd = 1.0 / lr_width if self.weight_decay == "scaled" else 1.0
        return ArrayScaling(name, tuple(array.shape), role, cls, m_in, m_out, width,
                            bool(in_block), init, lr_width * lr_depth, wd, eps)

    def _overridden(self, rows: list[ArrayScaling]) -> list[ArrayScaling]:
        import dataclasses

        for text in self.overrides:
            pattern, key, value = _parse_override(text)
            hits = [i for i, r in enumerate(rows) if fnmatch.fnmatchcase(r.name, pattern)]
            if not hits:
                raise ConfigError("parametrisation.overrides", text,
                                  "a glob matching a parameter name, e.g. "
                                  + ", ".join(r.name for r in rows[:3]))
            for i in hits:
                rows[i] = dataclasses.replace(rows[i], **{key: value})
        return rows


def _arrays(model: ScalableModel):
    """(name, array, role, in_block) for every array, in the flattening order of
    ``eqx.filter(model, eqx.is_array)``."""
    flat, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(model, _is_array_like))
    roles = jax.tree_util.tree_leaves(model.parameter_roles())
    blocks = jax.tree_util.tree_leaves(model.block_arrays())
    if not len(flat) == len(roles) == len(blocks):
        raise ValueError(f"{type(model).__name__}: parameter_roles / block_arrays do not "
                         "match its arrays")
    return [(path_name(p), a, r, b) for (p, a), r, b in zip(flat, roles, blocks, strict=True)]


def _is_array_like(x) -> bool:
    return isinstance(x, jax.Array | jax.ShapeDtypeStruct)


def _lookup(arrays: dict, name: str):
    """The base's array of this name, or of the same name with its first index 0 (block 0,
    for the blocks a deeper model has beyond the base's)."""
    if name in arrays:
        return arrays[name]
    first = re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.)", "0", name, count=1)
    if first in arrays:
        return arrays[first]
    raise ValueError(f"the base model has no array like {name} (nor {first})")


def _ratios(shape, base_shape, name) -> list[float]:
    if len(shape) != len(base_shape):
        raise ValueError(f"{name}: shape {tuple(shape)} against the base's "
                         f"{tuple(base_shape)}: the number of axes differs")
    return [s / b for s, b in zip(shape, base_shape, strict=True)]


def _classify(name: str, role: str, ndim: int, wide: list[bool], known: bool) -> str:
    """The array's class from its role and rank, and (when the shapes against the base
    tell the width axes apart, ``known``) from its number of width axes."""
    if role == "state":
        return "state"
    if role == "embedding":
        cls = "input"
    elif role == "readout":
        cls = "output" if ndim >= 2 else "fixed"
    elif role in ("norm", "bias") or ndim < 2:
        cls = "vector"
    else:
        cls = "hidden"
    if known or ndim == 0:
        count = sum(wide)
        if count == 0:
            return "fixed"
        if cls == "hidden" and count < 2:
            raise ValueError(f"{name} (role {role}) has one width axis against the base; a "
                             "hidden weight needs two (let its fan-in and fan-out grow "
                             "with the width)")
    return cls
