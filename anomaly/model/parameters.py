"""The detector's parameters: what each may be, as data, and the one function that checks.

As scikit-learn's ``_parameter_constraints`` (sklearn/ensemble/_iforest.py) checked by
``_validate_params``: each parameter has a :class:`Rule`, a few rules tie two parameters
together, and :func:`validate_params` reports the first that fails in the words "NAME must
be WHAT, got VALUE". A new parameter is one line in :data:`CONSTRAINTS`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

from ..choices import MAX_CALIBRATION_BEATS, MAX_SEED, CodeDistance, ErrorMetric, ModelFamily
from ..exceptions import shortened
from ..json_values import is_finite
from .threshold import THRESHOLD_SOURCES

MODEL_FAMILIES = tuple(family.value for family in ModelFamily)
LOSSES = ("mae", "mse", "binary_crossentropy")
CODE_DISTANCES = tuple(choice.value for choice in CodeDistance)


@dataclass(frozen=True)
class Rule:
    """What a parameter must be (``description``, after "must be") and the test of it."""

    description: str
    test: Callable[[Any], bool]


def one_of(choices: tuple) -> Rule:
    """One of the strings ``choices``."""
    return Rule(f"one of {choices}", lambda value: isinstance(value, str) and value in choices)


def number(*, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
           high_open: bool = False, integer: bool = False, description: str) -> Rule:
    """A finite number (an int with ``integer``) in the interval from ``low`` to ``high``."""
    def test(value: Any) -> bool:
        kind = numbers.Integral if integer else numbers.Real
        # is_finite, not math.isfinite: an int too large for a float is refused, not raised.
        if isinstance(value, bool) or not isinstance(value, kind) or not is_finite(value):
            return False
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below
    return Rule(description, test)


def _is_count(value: Any, least: int = 1) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def _widths(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(map(_is_count, value))


def _names(value: Any) -> bool:
    return (isinstance(value, (tuple, list))
            and all(isinstance(name, str) and name for name in value)
            and len(set(value)) == len(value))


def _batch_size(value: Any) -> bool:
    return value == "auto" or _is_count(value)


#: What each constructor parameter may be.
CONSTRAINTS: dict[str, Rule] = {
    "model": one_of(MODEL_FAMILIES),
    "model_options": Rule("None or a dict", lambda v: v is None or isinstance(v, dict)),
    "hidden_units": Rule("positive widths", _widths),
    "loss": one_of(LOSSES),
    "error_metric": one_of(tuple(metric.value for metric in ErrorMetric)),
    "code_distance": one_of(CODE_DISTANCES),
    "noise_factor": number(low=0.0, description="a finite number >= 0"),
    "epochs": number(low=1, integer=True, description="an integer >= 1"),
    "batch_size": Rule("'auto' or an integer >= 1", _batch_size),
    "max_inputs_seen": Rule("None or an integer >= 1", lambda v: v is None or _is_count(v)),
    "learning_rate": number(low=0.0, low_open=True, description="a finite number > 0"),
    "validation_fraction": number(low=0.0, high=1.0, high_open=True, description="in [0, 1)"),
    "patience": number(low=0, integer=True, description="an integer >= 0"),
    "threshold_k": number(description="a finite number"),
    "threshold_winsorise": number(low=0, high=MAX_CALIBRATION_BEATS, integer=True,
                                  description="an integer from 0 to 1e12"),
    "threshold_source": one_of(THRESHOLD_SOURCES),
    "heldout_fraction": number(low=0.0, high=1.0, low_open=True, high_open=True,
                               description="in (0, 1)"),
    "context": Rule("a tuple of distinct column names", _names),
    "context_weight": number(low=0.0, high=1.0, low_open=True, high_open=True,
                             description="in (0, 1)"),
    "seed": number(low=0, high=MAX_SEED, integer=True,
                   description=f"an integer from 0 to {MAX_SEED}"),
}

#: Rules between parameters: the message, the parameters it ties, and the test of the
#: parameters as a dict.
JOINT_CONSTRAINTS: tuple[tuple[str, tuple[str, ...], Callable[[dict[str, Any]], bool]], ...] = (
    ("context needs the dense family", ("model", "context"),
     lambda p: not p["context"] or p["model"] == "dense"),
    ("context and noise_factor cannot be combined", ("context", "noise_factor"),
     lambda p: not p["context"] or p["noise_factor"] == 0),
    ("code_distance 'on' needs the dense family (the code layer it measures in)",
     ("model", "code_distance"), lambda p: p["code_distance"] != "on" or p["model"] == "dense"),
)


def with_python_numbers(value: Any) -> Any:
    """``value`` (a parameter, or a tuple, list or dict of them) with its NumPy numbers as
    Python's: a grid of ``np.arange`` values is a user's, and Keras's seed and the JSON
    metadata take only Python's ints and floats. An array is left as it is (no parameter
    is one: :func:`validate_params` refuses it)."""
    if isinstance(value, dict):
        return {key: with_python_numbers(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(with_python_numbers(item) for item in value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, float)):
        return float(value)
    return value


def validate_params(params: dict[str, Any]) -> None:
    """Raise a ValueError naming the first parameter that cannot be used.

    Parameters
    ----------
    params : dict
        Every parameter of :data:`CONSTRAINTS`, by name.
    """
    for name, rule in CONSTRAINTS.items():
        value = params[name]
        if not rule.test(value):
            raise ValueError(f"{name} must be {rule.description}, got {shortened(repr(value))}")
    for message, names, test in JOINT_CONSTRAINTS:
        if not test(params):
            got = ", ".join(f"{name}={shortened(repr(params[name]))}" for name in names)
            raise ValueError(f"{message} (got {got})")
