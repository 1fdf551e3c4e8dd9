"""Claims: a measured number checked against a stated numeric criterion."""

import math
import operator
from dataclasses import asdict, dataclass

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass(frozen=True)
class Claim:
    """One row of a recipe's claims table (and of ``claims.json``).

    Args:
        id: short stable identifier.
        claim: the statement being checked, in words.
        measured: the measured number.
        criterion: the check, e.g. "<= 1.02".
        paper: the paper's (or reference code's) value where known, else None.
        passed: whether ``measured`` satisfies ``criterion``.
    """

    id: str
    claim: str
    measured: float
    criterion: str
    paper: float | str | None
    passed: bool

    def to_json(self) -> dict:
        out = asdict(self)
        out["measured"] = None if math.isnan(self.measured) else float(self.measured)
        return out


def check(id: str, claim: str, measured: float, op: str, threshold: float,
          paper: float | str | None = None) -> Claim:
    """Build a ``Claim`` whose criterion is ``measured <op> threshold``. NaN fails."""
    measured = float(measured)
    passed = (not math.isnan(measured)) and _OPS[op](measured, threshold)
    return Claim(id, claim, measured, f"{op} {threshold:g}", paper, bool(passed))
