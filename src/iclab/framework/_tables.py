"""Small helpers that turn arrays into the long tables a run folder stores, and back."""

import numpy as np
import pandas as pd


def matrix_table(matrices: dict[str, np.ndarray]) -> pd.DataFrame:
    """Matrices as one long table: columns name, i, j, value (row-major)."""
    frames = []
    for name, matrix in matrices.items():
        m = np.asarray(matrix, float)
        if m.ndim != 2:
            raise ValueError(f"matrix_table: {name!r} has shape {m.shape}, not 2-d")
        i, j = np.indices(m.shape)
        frames.append(pd.DataFrame({"name": name, "i": i.ravel(), "j": j.ravel(),
                                    "value": m.ravel()}))
    return pd.concat(frames, ignore_index=True)


def table_matrix(table: pd.DataFrame, name: str) -> np.ndarray:
    """The matrix called ``name`` in a ``matrix_table``."""
    rows = table[table["name"] == name]
    out = np.full((int(rows.i.max()) + 1, int(rows.j.max()) + 1), np.nan)
    out[rows.i.to_numpy(), rows.j.to_numpy()] = rows.value.to_numpy()
    return out


def curve_table(**columns) -> pd.DataFrame:
    """A table from equal-length 1-d columns (arrays or lists)."""
    return pd.DataFrame({k: np.asarray(v).reshape(-1) for k, v in columns.items()})
