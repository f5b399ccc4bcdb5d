"""What the data-quality monitor watches in a sentence pair, and the lexical measures the model is built on.

One self-contained file, standard library only: it ships with the step
scripts, in the model's ``code/`` (``featurizer`` imports its lexical
helpers from here, so the model and the monitor compute them with the same
code), and it is what a Model Monitor record preprocessor needs
(:func:`preprocess_handler`).

The watched features of one pair (:data:`FEATURES`, Model Monitor's
``inferred_type`` beside each):

- text descriptors of each sentence: ``sentence{1,2}_tokens`` and
  ``sentence{1,2}_chars`` (Integral), ``sentence{1,2}_unseen_share``
  (Fractional: share of its word tokens not in the training vocabulary;
  0 when it has none), and of the pair: ``non_ascii_share`` (Fractional),
  ``empty_pair`` and ``identical_pair`` (Integral 0/1);
- the model's own pair features, exactly the featurizer's columns of the
  same names: ``word1_f1``, ``word2_f1`` (word n-gram overlap),
  ``char3_jaccard``, ``bleu_mean``, ``rouge_l_f1`` (longest common
  subsequence), ``word_edit_norm``, ``len_ratio``;
- the prediction: ``probability`` and ``predicted_label``
  (BinaryClassification), ``score`` (Regression) — from the endpoint's
  answer, not from the pair.

Tokens are the featurizer's: letters and digits keeping inner ``' - . ,``
(don't, U.S., 1,000), lower-cased.
"""

from __future__ import annotations

import math
import re
from collections import Counter

# -- the featurizer's lexical helpers (featurizer.py imports them from here) ---------------

# Quadratic-time measures (LCS, edit distance) look at this many tokens at most,
# so one huge sentence cannot stall a request.
MAX_TOKENS = 128

# Words: letters/digits, keeping inner ' - . , (don't, U.S., 1,000, 2.5).
_WORD = re.compile(r"\w+(?:['\-.,]\w+)*")
_SPACES = re.compile(r"\s+")


def _ngrams(tokens: list, n: int) -> Counter:
    if n == 1:
        return Counter(tokens)
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _char_ngrams(text: str, n: int) -> set[str]:
    return {text[i:i + n] for i in range(len(text) - n + 1)}


def _overlap(a: Counter, b: Counter) -> tuple[float, float, float]:
    """(min, max, f1) of the clipped n-gram precision in both directions."""
    if not a or not b:
        return 0.0, 0.0, 0.0
    common = sum((a & b).values())
    p = common / sum(a.values())
    r = common / sum(b.values())
    f = 2 * p * r / (p + r) if common else 0.0
    return min(p, r), max(p, r), f


def _set_overlap(a: set, b: set) -> tuple[float, float, float]:
    """(jaccard, min containment, max containment) of two sets."""
    if not a or not b:
        return 0.0, 0.0, 0.0
    common = len(a & b)
    return common / len(a | b), common / max(len(a), len(b)), common / min(len(a), len(b))


def _bleu(hyp: list, ref: list, hyp_grams: list[Counter], ref_grams: list[Counter]) -> float:
    """Sentence BLEU-4 of ``hyp`` against ``ref`` with add-one smoothing (n > 1)."""
    if not hyp or not ref:
        return 0.0
    log_p = 0.0
    for n in range(1, 5):
        total = max(len(hyp) - n + 1, 0)
        match = sum((hyp_grams[n - 1] & ref_grams[n - 1]).values())
        if n == 1:
            if match == 0:
                return 0.0
            log_p += math.log(match / total)
        else:
            log_p += math.log((match + 1) / (total + 1))
    bp = 1.0 if len(hyp) >= len(ref) else math.exp(1 - len(ref) / len(hyp))
    return bp * math.exp(log_p / 4)


def _positions(a: list) -> dict:
    """Bit mask of the positions of each distinct token of ``a`` (bit i = a[i])."""
    masks: dict = {}
    for i, x in enumerate(a):
        masks[x] = masks.get(x, 0) | (1 << i)
    return masks


def _lcs(a: list, b: list) -> tuple[int, int]:
    """(longest common subsequence, longest common contiguous run) of two sequences.

    Exact, and much cheaper than the O(len(a) * len(b)) tables in pure Python:
    the subsequence length is computed bit-parallel (Allison & Dix 1986; one
    big-integer step per token of ``b``), the longest run by visiting only the
    positions where tokens match (tests compare both with the plain tables).
    """
    if not a or not b:
        return 0, 0
    masks = _positions(a)
    mask = (1 << len(a)) - 1
    v = mask
    for y in b:
        u = v & masks.get(y, 0)
        v = ((v + u) | (v - u)) & mask
    lcs = len(a) - bin(v).count("1")
    where: dict = {}
    for i, x in enumerate(a):
        where.setdefault(x, []).append(i)
    best_run = 0
    prev: dict = {}
    for y in b:
        cur = {}
        for i in where.get(y, ()):
            run = prev.get(i - 1, 0) + 1
            cur[i] = run
            if run > best_run:
                best_run = run
        prev = cur
    return lcs, best_run


def _edit_distance(a: list, b: list) -> int:
    """Levenshtein distance between two token sequences.

    Exact, bit-parallel (Myers 1999 in Hyyrö's formulation): one big-integer
    step per token of ``b`` instead of a len(a) x len(b) table.
    """
    if not a:
        return len(b)
    if not b:
        return len(a)
    masks = _positions(a)
    m = len(a)
    mask = (1 << m) - 1
    high = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for y in b:
        eq = masks.get(y, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & mask
        mh = pv & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = (mh | ~(xv | ph)) & mask
        mv = ph & xv
    return score


def _harmonic(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


# -- the watched features ---------------------------------------------------------------------

INTEGRAL = "Integral"
FRACTIONAL = "Fractional"

#: (name, Model Monitor inferred_type) of the features computed from the pair, in column order.
PAIR_FEATURES: tuple[tuple[str, str], ...] = (
    ("sentence1_tokens", INTEGRAL),
    ("sentence2_tokens", INTEGRAL),
    ("sentence1_chars", INTEGRAL),
    ("sentence2_chars", INTEGRAL),
    ("sentence1_unseen_share", FRACTIONAL),
    ("sentence2_unseen_share", FRACTIONAL),
    ("non_ascii_share", FRACTIONAL),
    ("empty_pair", INTEGRAL),
    ("identical_pair", INTEGRAL),
    ("word1_f1", FRACTIONAL),
    ("word2_f1", FRACTIONAL),
    ("char3_jaccard", FRACTIONAL),
    ("bleu_mean", FRACTIONAL),
    ("rouge_l_f1", FRACTIONAL),
    ("word_edit_norm", FRACTIONAL),
    ("len_ratio", FRACTIONAL),
)
#: The prediction's features, by problem type (SageMaker's names).
PREDICTION_FEATURES: dict[str, tuple[tuple[str, str], ...]] = {
    "BinaryClassification": (("probability", FRACTIONAL), ("predicted_label", INTEGRAL)),
    "Regression": (("score", FRACTIONAL),),
}


def features(problem_type: str) -> tuple[tuple[str, str], ...]:
    """Every watched feature of ``problem_type``: the pair's, then the prediction's."""
    return PAIR_FEATURES + PREDICTION_FEATURES[problem_type]


def tokens(text: str) -> list[str]:
    """The featurizer's word tokens of a sentence, lower-cased."""
    return [w.lower() for w in _WORD.findall(text)]


def normalized(text: str) -> str:
    """Lower-cased, runs of white space as one space, stripped (the featurizer's ``_Sentence.lower``)."""
    return _SPACES.sub(" ", text.lower()).strip()


def _unseen(words: list[str], vocabulary) -> float:
    if not words or vocabulary is None:
        return 0.0
    return sum(1 for w in words if w not in vocabulary) / len(words)


def pair_row(sentence1: str, sentence2: str, vocabulary=None) -> tuple[float, ...]:
    """The :data:`PAIR_FEATURES` of one pair, in order.

    ``vocabulary``: the training split's word tokens (a set); without one the
    unseen shares are 0.
    """
    wa, wb = tokens(sentence1), tokens(sentence2)
    la_text, lb_text = normalized(sentence1), normalized(sentence2)
    chars = len(sentence1) + len(sentence2)
    non_ascii = sum(1 for ch in sentence1 if ord(ch) > 127) + sum(1 for ch in sentence2 if ord(ch) > 127)

    ga = [_ngrams(wa, n) for n in range(1, 5)]
    gb = [_ngrams(wb, n) for n in range(1, 5)]
    b12 = _bleu(wa, wb, ga, gb)
    b21 = _bleu(wb, wa, gb, ga)
    ta, tb = wa[:MAX_TOKENS], wb[:MAX_TOKENS]
    lcs, _ = _lcs(ta, tb)
    la, lb = max(len(ta), 1), max(len(tb), 1)
    na, nb = len(wa), len(wb)
    return (
        float(na), float(nb), float(len(sentence1)), float(len(sentence2)),
        _unseen(wa, vocabulary), _unseen(wb, vocabulary),
        non_ascii / chars if chars else 0.0,
        float(not wa or not wb),
        float(la_text == lb_text),
        _overlap(ga[0], gb[0])[2],
        _overlap(ga[1], gb[1])[2],
        _set_overlap(_char_ngrams(la_text, 3), _char_ngrams(lb_text, 3))[0],
        (b12 + b21) / 2,
        _harmonic(lcs / la, lcs / lb),
        _edit_distance(ta, tb) / max(la, lb),
        min(na, nb) / max(na, nb, 1),
    )


# -- Model Monitor's record preprocessor ------------------------------------------------------

#: The training vocabulary of a generated preprocessor (``data_quality_baseline.py`` writes
#: ``preprocessor.py``: this file with the vocabulary of the model it baselined appended).
VOCABULARY: frozenset | None = None


def _split_csv_line(line: str) -> list[str]:
    import csv

    return next(csv.reader([line], strict=True), [])


def request_pairs(data: str, content_type: str) -> list[tuple[str, str]]:
    """The pairs of a captured request (the endpoint's formats: docs/CONTRACTS.md §1); [] if unusable."""
    import json

    media = (content_type or "").split(";")[0].strip().lower()
    try:
        if media == "text/csv":
            rows = [_split_csv_line(line) for line in data.rstrip("\r\n").splitlines() if line.strip()]
            return [(r[0], r[1]) for r in rows if len(r) == 2]
        if media == "application/jsonlines":
            items = [json.loads(line) for line in data.splitlines() if line.strip()]
        else:
            doc = json.loads(data)
            items = doc.get("instances", [doc]) if isinstance(doc, dict) else doc
        pairs = []
        for item in items:
            if isinstance(item, dict):
                item = [item.get("sentence1"), item.get("sentence2")]
            if isinstance(item, list) and len(item) == 2 and all(isinstance(s, str) for s in item):
                pairs.append((item[0], item[1]))
        return pairs
    except (ValueError, TypeError, AttributeError, StopIteration):
        return []


def answer_rows(data: str, content_type: str) -> list[dict]:
    """The predictions of a captured answer as ``{"probability", "predicted_label"}`` / ``{"score"}``."""
    import json

    media = (content_type or "").split(";")[0].strip().lower()
    rows = []
    try:
        if media == "text/csv":
            for line in data.strip().splitlines():
                values = [float(v) for v in line.split(",")]
                rows.append({"predicted_label": int(values[0]), "probability": values[1]} if len(values) == 2
                            else {"score": values[0]})
            return rows
        items = ([json.loads(line) for line in data.splitlines() if line.strip()] if media == "application/jsonlines"
                 else json.loads(data).get("predictions", []))
        for item in items:
            if "label" in item:
                rows.append({"predicted_label": int(item["label"]), "probability": float(item["probability"])})
            else:
                rows.append({"score": float(item["score"])})
        return rows
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        return []


def preprocess_handler(inference_record, logger=None):
    """Model Monitor's record preprocessor (``RecordPreprocessorSourceUri``): a captured request into
    one flat row per pair, the :data:`PAIR_FEATURES` and the prediction's features.

    Model Monitor hands in the capture record as objects (``endpoint_input.data``,
    ``.observedContentType``; ``endpoint_output`` likewise: AWS docs, "Preprocessing and
    Postprocessing") and takes a dict (one row) or a list of dicts. A request that cannot be read
    gives one row with every value None: the completeness check counts it.
    """
    request, answer = inference_record.endpoint_input, inference_record.endpoint_output
    pairs = request_pairs(request.data, request.observedContentType) if request is not None else []
    predictions = answer_rows(answer.data, answer.observedContentType) if answer is not None else []
    names = [name for name, _ in PAIR_FEATURES]
    if not pairs:
        if logger is not None:
            logger.warning("a captured request with no readable sentence pair")
        return [dict.fromkeys(names)]
    rows = []
    for i, (s1, s2) in enumerate(pairs):
        row = dict(zip(names, pair_row(s1, s2, VOCABULARY)))
        row.update(predictions[i] if i < len(predictions) else {})
        rows.append(row)
    return rows
