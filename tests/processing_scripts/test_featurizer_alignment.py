"""The bit-parallel LCS / edit distance in the featurizer equal the plain dynamic-programming tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

import featurizer

tokens = st.lists(st.sampled_from(["the", "cat", "sat", "on", "a", "mat", "7", "Mr."]), max_size=40)


def lcs_table(a: list, b: list) -> tuple[int, int]:
    """Reference: the O(len(a) * len(b)) tables (subsequence and contiguous run)."""
    if not a or not b:
        return 0, 0
    prev, prev_run, best = [0] * (len(b) + 1), [0] * (len(b) + 1), 0
    for x in a:
        cur, cur_run = [0], [0]
        for j, y in enumerate(b, 1):
            if x == y:
                cur.append(prev[j - 1] + 1)
                cur_run.append(prev_run[j - 1] + 1)
                best = max(best, cur_run[-1])
            else:
                cur.append(max(prev[j], cur[j - 1]))
                cur_run.append(0)
        prev, prev_run = cur, cur_run
    return prev[-1], best


def levenshtein_table(a: list, b: list) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


#: Examples per property. Measured on 15 plausible slips in the two functions (a dropped mask, carry bit or
#: shift-in, the wrong bit tested, runs not reset, the wrong length...), 20 seeds each: every one was found,
#: the slowest after 145 examples (median 8-60). 2000 (before) cost ~2 s a test for nothing more found.
EXAMPLES = 300


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None)
@given(tokens, tokens)
def test_lcs_and_run_equal_the_tables(a, b):
    assert featurizer._lcs(a, b) == lcs_table(a, b)


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None)
@given(tokens, tokens)
def test_edit_distance_equals_the_table(a, b):
    assert featurizer._edit_distance(a, b) == levenshtein_table(a, b)


def test_long_sequences_beyond_machine_words():
    a = ["w%d" % (i % 97) for i in range(300)]
    b = ["w%d" % (i % 89) for i in range(280)]
    assert featurizer._edit_distance(a, b) == levenshtein_table(a, b)
    assert featurizer._lcs(a, b) == lcs_table(a, b)


@pytest.mark.slow
def test_features_do_not_depend_on_the_string_hash_seed(tmp_path, subprocess_env, scripts_dir):
    """Set iteration order changes with PYTHONHASHSEED; the features must not."""
    import subprocess
    import sys

    code = f"""
import sys
sys.path[:0] = [{str(scripts_dir)!r}, {str(Path(__file__).parent)!r}]
import numpy as np, pandas as pd
import featurizer, pairs_fixture
rows = pairs_fixture.binary_rows()
X = pd.DataFrame({{"sentence1": [r[3] for r in rows], "sentence2": [r[4] for r in rows]}})
y = np.array([int(r[0]) for r in rows])
f = featurizer.PairFeaturizer(random_state=0).fit(X, y)
sys.stdout.buffer.write(f.transform(X).tobytes())
"""
    outputs = []
    for seed in ("1", "2", "3"):
        env = {**subprocess_env, "PYTHONHASHSEED": seed}
        outputs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True).stdout)
    assert outputs[0] and outputs[0] == outputs[1] == outputs[2]
