"""What the fuzz modules (test_fuzz_*.py) share: hypothesis settings that keep them reproducible and fast, and
strategies for the hostile numbers, arrays and strings that arrive from outside (topics, services, files).

Budget: every property runs `derandomize=True` (the same examples on every run and machine, no example database
written) with at most FUZZ_EXAMPLES examples (FUZZ_EXAMPLES_SLOW for the ones that decode images or build messages
per example); all three modules together take well under 20 s here.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = 150
FUZZ_EXAMPLES_SLOW = 60


def fuzz(max_examples: int = FUZZ_EXAMPLES):
    """@fuzz() on a @given test: derandomized, bounded, no deadline (a loaded CI machine is not a failure), no files."""
    return settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# Floats as they come in messages: ordinary values, edges, and the poison ones.
hostile_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 1e300, -1e300, 1e308, float("nan"), float("inf"),
                     float("-inf"), 2.0 ** 31, 2.0 ** 63]),
    st.floats(-1e4, 1e4),
)

# Text from outside: empty, ASCII, long, control characters, any unicode.
hostile_text = st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "\x00", "rgb8 ", "RGB8", "a" * 5000]))


@st.composite
def hostile_arrays(draw, max_dims: int = 3, max_side: int = 6):
    """A numpy array of a hostile kind: any small shape (empty too), a numeric, bool, complex, text or object dtype,
    with NaN / inf / huge values where the dtype allows."""
    shape = tuple(draw(st.lists(st.integers(0, max_side), max_size=max_dims)))
    kind = draw(st.sampled_from(["float64", "float32", "int64", "uint8", "bool", "complex128", "str", "object"]))
    size = int(np.prod(shape)) if shape else 1
    if kind in ("float64", "float32", "complex128"):
        values = draw(st.lists(hostile_floats, min_size=size, max_size=size))
        with np.errstate(all="ignore"):
            return np.array(values, dtype=kind).reshape(shape)
    if kind in ("int64", "uint8"):
        info = np.iinfo(kind)
        values = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=size, max_size=size))
        return np.array(values, dtype=kind).reshape(shape)
    if kind == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), bool).reshape(shape)
    if kind == "str":
        return np.array(draw(st.lists(st.text(max_size=3), min_size=size, max_size=size)), dtype=object
                        ).reshape(shape).astype(str)
    values = draw(st.lists(st.one_of(st.none(), hostile_floats, st.text(max_size=2)), min_size=size, max_size=size))
    out = np.empty(size, dtype=object)
    out[:] = values
    return out.reshape(shape)


def hostile_values(max_dims: int = 3, max_side: int = 6):
    """Anything a caller might pass where an array is expected: arrays, nested lists, scalars, text, None."""
    return st.one_of(
        hostile_arrays(max_dims, max_side),
        st.lists(hostile_floats, max_size=8),
        st.lists(st.lists(hostile_floats, max_size=3), max_size=5),   # ragged too
        hostile_floats,
        st.integers(-2 ** 70, 2 ** 70),
        hostile_text,
        st.none(),
    )
