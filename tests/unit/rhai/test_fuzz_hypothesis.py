"""Property-based fuzzing with hypothesis (skipped when hypothesis is not installed): no input
may crash the engine with anything but a RhaiError."""

import pytest

from levitate.recipe.rhai import Engine

from .test_fuzz import LIMITS, VOCAB, check

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not installed")
st = hypothesis.strategies


@hypothesis.settings(max_examples=300, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(st.lists(st.sampled_from(VOCAB), max_size=30))
def test_hypothesis_token_sequences(tokens):
    eng = Engine(LIMITS, on_print=lambda s: None, on_debug=lambda s: None)
    check(" ".join(tokens), eng)


@hypothesis.settings(max_examples=300, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(st.text(max_size=60))
def test_hypothesis_arbitrary_text(text):
    eng = Engine(LIMITS, on_print=lambda s: None, on_debug=lambda s: None)
    check(text, eng)
