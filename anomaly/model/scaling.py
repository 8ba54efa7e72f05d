"""What one input of a model holds, and how its values are scaled for the network.

An input is ``input_shape`` values: a beat's samples (or an image's pixels), then, for a
model with a context, one column per context value (a beat's RR context, see
:mod:`anomaly.model.context`). The samples are min-max scaled by one minimum and range,
those of all the training samples; each context column by its own. This layout, "samples,
then context columns", is known here only: callers ask the scaling for the sample count
(:attr:`Scaling.n_samples`) or for the samples of their inputs (:meth:`Scaling.samples`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import InputError, length_mismatch, shortened
from ..json_values import check_number, is_count, is_finite

#: How far outside the training range (in multiples of it) a value may be and still be
#: scored: beyond, it would overflow the network's float32 arithmetic, so it is clipped.
SCALED_LIMIT = 1e6


@dataclass(frozen=True)
class Scaling:
    """A fitted min-max scaling of a model's inputs (immutable).

    Parameters
    ----------
    input_shape : tuple of int
        Shape of one input: ``(n,)`` for a trace of ``n`` values (its samples, then its
        context columns), ``(height, width)`` for an image.
    min, range : float
        The samples' minimum and range (positive).
    context : tuple of str, default ()
        The context columns' names, in the order they follow the samples.
    context_min, context_range : tuple of float, default ()
        Each context column's minimum and range (positive), in the same order.

    Raises
    ------
    ValueError
        Values that no fitted scaling has (a range that is not positive and finite, a
        context on an image, context scalings that do not match the names).
    """

    input_shape: tuple[int, ...]
    min: float
    range: float
    context: tuple[str, ...] = ()
    context_min: tuple[float, ...] = ()
    context_range: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        shape, context = self.input_shape, self.context
        if not 1 <= len(shape) <= 3 or not all(is_count(size) for size in shape):
            raise ValueError(f"'input_shape' must be a list of 1 to 3 positive integers, got "
                             f"{list(shape)}")
        if not (is_finite(self.min) and is_finite(self.range) and self.range > 0):
            raise ValueError("scaling must be 'minmax' with a finite minimum and a positive "
                             "range")
        if _degenerate(self.range, self.min):
            raise ValueError(f"'scaling.range' {self.range:g} is degenerate for values near "
                             f"{self.min:g}: every value would lie far outside it")
        if not all(isinstance(name, str) and name for name in context) \
                or len(set(context)) != len(context):
            raise ValueError("context columns need distinct names, got "
                             f"{shortened(str(list(context)))}")
        if context and (len(shape) != 1 or shape[0] <= len(context)):
            raise ValueError("a context needs 1-D inputs with more values than context "
                             "columns")
        for name, values in (("context_min", self.context_min),
                             ("context_range", self.context_range)):
            if len(values) != len(context) or not all(is_finite(v) for v in values):
                raise ValueError(f"'scaling.{name}' must be {len(context)} finite number(s), "
                                 "one per context column")
        if not all(v > 0 for v in self.context_range):
            raise ValueError("'scaling.context_range' must be positive")
        if any(_degenerate(span, low) for span, low in zip(self.context_range, self.context_min)):
            raise ValueError("'scaling.context_range' is degenerate: every context value "
                             "would lie far outside it")

    # -- fitting ---------------------------------------------------------------------------

    @classmethod
    def fit(cls, inputs: np.ndarray, context: tuple[str, ...] = ()) -> "Scaling":
        """The scaling of training inputs ``(n, *input_shape)`` whose last ``len(context)``
        columns are context.

        Raises
        ------
        ValueError
            A context on inputs that are not rows with more columns than context columns.
        InputError
            Values that span more than a 64-bit float holds (no scaling can hold them).
        """
        inputs = np.asarray(inputs, dtype=np.float64)
        n_context = len(context)
        if n_context and (inputs.ndim != 2 or inputs.shape[1] <= n_context):
            raise ValueError(f"with {n_context} context column(s), expected traces as a 2-D "
                             f"array with more columns than that, got shape {inputs.shape}")
        samples = inputs[:, :-n_context] if n_context else inputs
        low = float(samples.min())
        # Python floats: a span beyond the largest float is inf, without a warning. Values
        # equal but for rounding are constant: they are scaled by 1, as equal ones are.
        span = float(samples.max()) - low
        span = 1.0 if _degenerate(span, low) else span
        if not math.isfinite(span):
            raise InputError(f"the training values span {low:.6g} to {float(samples.max()):.6g}, "
                             "more than a 64-bit float can hold")
        context_min, context_range = (), ()
        if n_context:
            columns = inputs[:, -n_context:]
            lows = columns.min(axis=0)
            spread = columns.max(axis=0) - lows
            if not np.isfinite(spread).all():
                raise InputError("the training context values span more than a 64-bit "
                                 "float can hold")
            context_min = tuple(float(v) for v in lows)
            context_range = tuple(1.0 if _degenerate(float(v), float(low)) else float(v)
                                  for v, low in zip(spread, lows))
        return cls(tuple(int(size) for size in inputs.shape[1:]), low, span, tuple(context),
                   context_min, context_range)

    # -- the layout ------------------------------------------------------------------------

    @property
    def n_values(self) -> int:
        """Values per input: samples and context columns (pixels, for an image)."""
        return math.prod(self.input_shape)

    @property
    def n_samples(self) -> int:
        """Samples per input, without the context columns."""
        return self.n_values - len(self.context)

    def samples(self, inputs: np.ndarray) -> np.ndarray:
        """The samples of inputs given as rows ``(n, n_values)`` (the context left out)."""
        return inputs[:, :self.n_samples] if self.context else inputs

    def shaped(self, inputs: np.ndarray) -> np.ndarray:
        """Inputs as float64 of shape ``(n, *input_shape)``; images may come flattened.

        Raises
        ------
        InputError
            Saying what was expected and what was got.
        """
        inputs = np.asarray(inputs, dtype=np.float64)
        if inputs.ndim >= 2 and inputs.shape[1:] == self.input_shape:
            return inputs
        if inputs.ndim == 2 and inputs.shape[1] == self.n_values:
            return inputs.reshape(len(inputs), *self.input_shape)
        if inputs.ndim == 2:  # Rows of values, as a CSV file holds them.
            raise InputError(length_mismatch(self.n_values, inputs.shape[1]))
        raise InputError(f"expected inputs of shape {self.input_shape} (the model's input "
                         f"shape), got inputs of shape {inputs.shape[1:]}")

    def blank_context(self, scaled: np.ndarray) -> np.ndarray:
        """What the network sees of scaled inputs: their context columns blanked (zeros)."""
        if not self.context:
            return scaled
        blanked = scaled.copy()
        blanked[:, -len(self.context):] = 0.0
        return blanked

    # -- scaling ---------------------------------------------------------------------------

    def transform(self, inputs: np.ndarray) -> np.ndarray:
        """Scaled inputs as float32, clipped to what the network's arithmetic holds."""
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = np.subtract(inputs, self.min, dtype=np.float64)
            scaled /= self.range
            if self.context:
                n_context = len(self.context)
                scaled[:, -n_context:] = ((inputs[:, -n_context:] - np.array(self.context_min))
                                          / np.array(self.context_range))
        np.clip(scaled, -SCALED_LIMIT, 1 + SCALED_LIMIT, out=scaled)
        return scaled.astype(np.float32)

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled values back in the inputs' units (float64)."""
        values = scaled * self.range + self.min
        if self.context:
            n_context = len(self.context)
            values[:, -n_context:] = (scaled[:, -n_context:] * np.array(self.context_range)
                                      + np.array(self.context_min))
        return values

    def value_range(self) -> tuple[float, float]:
        """The sample values a model can score: the training range widened
        ``SCALED_LIMIT`` times on each side (beyond, values are clipped)."""
        return (self.min - SCALED_LIMIT * self.range,
                self.min + (1 + SCALED_LIMIT) * self.range)

    # -- the model directory's metadata ----------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The ``scaling`` section of a model directory's metadata."""
        data: dict[str, Any] = {"method": "minmax", "input_shape": list(self.input_shape),
                                "min": self.min, "range": self.range}
        if self.context:
            data.update(context=list(self.context), context_min=list(self.context_min),
                        context_range=list(self.context_range))
        return data

    @classmethod
    def from_json(cls, data: Any) -> "Scaling":
        """The scaling :meth:`to_json` wrote; ValueError naming what is malformed."""
        if not isinstance(data, dict) or data.get("method") != "minmax":
            raise ValueError("'scaling' must be an object with method 'minmax'")
        for key in ("input_shape", "min", "range"):
            if key not in data:
                raise ValueError(f"'scaling.{key}' is missing")
        lists = {key: data.get(key, []) for key in
                 ("input_shape", "context", "context_min", "context_range")}
        for key, value in lists.items():
            if not isinstance(value, list):
                raise ValueError(f"'scaling.{key}' must be a list")
        if not all(is_count(size) for size in lists["input_shape"]):
            raise ValueError("'scaling.input_shape' must be a list of 1 to 3 positive integers")
        low, span = (check_number(data[key], f"scaling.{key}") for key in ("min", "range"))
        context_min, context_range = (tuple(check_number(v, f"scaling.{key}") for v in lists[key])
                                      for key in ("context_min", "context_range"))
        return cls(tuple(lists["input_shape"]), low, span, tuple(lists["context"]), context_min,
                   context_range)


#: A range below this share of its values' magnitude (at least 1) is rounding, not spread.
DEGENERATE_RANGE = 1e-9


def _degenerate(span: float, low: float) -> bool:
    """Whether a min-max range is too narrow to scale by: values equal but for rounding
    (or a hand-edited range such as 1e-300)."""
    return span < DEGENERATE_RANGE * max(1.0, abs(low))


def scaling_note(inputs: np.ndarray, context: tuple[str, ...] = ()) -> str | None:
    """A warning when a few extreme values set the min-max scaling of training inputs,
    squeezing the rest into a sliver of the range: of the samples (all but the last
    ``len(context)`` columns), or of one context column (each is scaled on its own, named
    in the warning); None otherwise."""
    inputs = np.asarray(inputs, dtype=np.float64)
    n_samples = inputs.shape[1] - len(context)
    parts = [("training values", inputs[:, :n_samples])]
    parts += [(f"training beats' {name}", inputs[:, n_samples + i])
              for i, name in enumerate(context)]
    for what, values in parts:
        # The typical range leaves out 0.1% of the values at either end, and at least the
        # lowest and the highest (a context column of a few hundred beats).
        tail = max(0.1, 100 / values.size)
        low, high = float(values.min()), float(values.max())
        typical_low = float(np.percentile(values, tail, method="higher"))
        typical_high = float(np.percentile(values, 100 - tail, method="lower"))
        span, typical = high - low, typical_high - typical_low
        if typical > 0 and math.isfinite(span) and span > 100 * typical:
            return (f"the {what} span {low:.6g} to {high:.6g}, but {100 - 2 * tail:.3g}% of "
                    f"them lie within {typical_low:.6g} to {typical_high:.6g}: a few extreme "
                    f"values set the min-max scaling and squeeze the rest into "
                    f"{typical / span:.2g} of its range")
    return None  # (A span beyond a float is refused by Scaling.fit itself.)
