"""Lexical features of raw sentence pairs: a scikit-learn transformer.

``PairFeaturizer`` turns pairs of raw sentences into a dense matrix of cheap,
strong lexical similarity features (about 70 columns): word n-gram overlap,
BLEU, ROUGE-L/LCS, edit distances, character n-gram overlap, IDF-weighted
overlap and TF-IDF cosines, length, number/date/negation agreement and
unmatched (proper-noun) words. Its learned state (word and character-n-gram
document frequencies) comes from the sentences it is fitted on - the training
split only - and is pickled with the model, so serving applies exactly what
training learned.

Every feature is symmetric in the two sentences (``min``/``max``/harmonic mean
of the two directions), since the order of a pair carries no meaning.

Standard library, numpy and scikit-learn only: this module runs inside the
SageMaker scikit-learn container and ships in ``model.tar.gz`` (``code/``).
It is imported as the top-level module ``featurizer``, so pickled models refer
to ``featurizer.PairFeaturizer``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from difflib import SequenceMatcher

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.utils.validation import check_is_fitted

# The lexical measures live in pair_features (standard library only), so the data-quality
# monitor computes the model's own features with the same code.
from pair_features import (  # noqa: F401 - re-exported: tests and callers use featurizer._lcs etc.
    _SPACES,
    _WORD,
    MAX_TOKENS,
    _bleu,
    _char_ngrams,
    _edit_distance,
    _harmonic,
    _lcs,
    _ngrams,
    _overlap,
    _positions,
    _set_overlap,
)

# Quadratic-time features look at this many characters at most (MAX_TOKENS tokens:
# pair_features), so one huge sentence cannot stall a request.
MAX_CHARS = 600

_NUMBER = re.compile(r"^\d[\d,]*(?:\.\d+)?$|^\d*\.\d+$")

STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | {"s", "t", "said", "says", "say"}
NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere",
     "cannot", "without", "n't", "don't", "doesn't", "didn't", "isn't", "wasn't",
     "aren't", "weren't", "won't", "wouldn't", "can't", "couldn't", "shouldn't",
     "hasn't", "haven't", "hadn't", "mustn't"}
)
MONTHS_DAYS = frozenset(
    {"january", "february", "march", "april", "may", "june", "july", "august",
     "september", "october", "november", "december", "jan", "feb", "mar", "apr",
     "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "monday", "tuesday",
     "wednesday", "thursday", "friday", "saturday", "sunday", "today",
     "yesterday", "tomorrow"}
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "edly", "ed", "ies", "es", "ly", "s")


def _stem(word: str) -> str:
    """A tiny suffix stripper (cheaper than a real stemmer, good enough here)."""
    if len(word) <= 4 or not word.isalpha():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


class _Sentence:
    """The tokenized views of one sentence that the features need."""

    __slots__ = ("text", "words", "lower", "stems", "content", "caps", "numbers",
                 "dates", "negations", "chars")

    def __init__(self, text: str) -> None:
        self.text = text
        raw = _WORD.findall(text)
        self.words = [w.lower() for w in raw]
        self.lower = _SPACES.sub(" ", text.lower()).strip()
        self.stems = [_stem(w) for w in self.words]
        self.content = [s for w, s in zip(self.words, self.stems) if w not in STOP_WORDS]
        # Capitalized words not at the start: a cheap proxy for names.
        self.caps = {w.lower() for i, w in enumerate(raw) if i > 0 and w[:1].isupper()}
        self.numbers = {w.replace(",", "") for w in self.words if _NUMBER.match(w)}
        self.dates = {w for w in self.words if w in MONTHS_DAYS}
        self.negations = sum(1 for w in self.words if w in NEGATIONS or w.endswith("n't"))
        self.chars = self.lower[:MAX_CHARS]


def _min_max_f(p: float, r: float) -> tuple[float, float, float]:
    return min(p, r), max(p, r), _harmonic(p, r)


FEATURE_NAMES: tuple[str, ...] = (
    *(f"word{n}_{k}" for n in range(1, 5) for k in ("min", "max", "f1")),
    *(f"stem{n}_{k}" for n in (1, 2) for k in ("min", "max", "f1")),
    *(f"content{n}_{k}" for n in (1, 2) for k in ("min", "max", "f1")),
    *(f"char{n}_{k}" for n in (2, 3, 4, 5) for k in ("jaccard", "min", "max")),
    "bleu_min", "bleu_max", "bleu_mean",
    "lcs_min", "lcs_max", "rouge_l_f1", "longest_run_min", "longest_run_max",
    "word_edit_norm", "stem_edit_norm", "char_ratio",
    "idf_overlap_min", "idf_overlap_max", "idf_overlap_f1",
    "idf_content_min", "idf_content_max", "idf_unmatched_max", "idf_unmatched_sum",
    "tfidf_word_cosine", "tfidf_bigram_cosine", "tfidf_char_cosine", "tfidf_stem_cosine",
    "len_min", "len_max", "len_diff", "len_ratio", "char_len_diff", "char_len_ratio",
    "unmatched_min", "unmatched_max", "unmatched_total",
    "caps_unmatched", "caps_jaccard",
    "num_any", "num_both", "num_equal", "num_jaccard", "num_subset", "num_unmatched",
    "date_any", "date_equal", "date_unmatched",
    "neg_any", "neg_mismatch",
)
#: Learned, label-aware features (see ``PairFeaturizer``): naive-Bayes
#: log-odds of the shared / unshared terms and a TF-KLD weighted cosine.
SUPERVISED_FEATURE_NAMES: tuple[str, ...] = ("nb_logodds", "nb_unshared_logodds", "tfkld_cosine")


class PairFeaturizer(TransformerMixin, BaseEstimator):
    """Lexical similarity features of sentence pairs.

    Parameters
    ----------
    char_ngram : int, default 3
        Character n-gram length of the character TF-IDF cosine.
    min_df : int, default 1
        Words or character n-grams seen in fewer training sentences get the
        IDF of an unseen token (the largest).
    supervised : bool, default True
        Add three label-aware features when ``fit`` gets ``y``: for every
        stem and stem bigram, how much more often it is *shared* by both
        sentences of a paraphrase than of a non-paraphrase (smoothed counts,
        in the spirit of TF-KLD, Ji & Eisenstein 2013). Real-valued labels
        are split at their median. Without ``y`` these columns are 0.
    cv_folds : int, default 5
        ``fit_transform`` computes the label-aware features of each training
        pair from statistics of the *other* folds (cross-fitting, like
        scikit-learn's ``TargetEncoder``), so the estimator downstream does
        not learn from features that have seen its own labels. ``transform``
        uses statistics of all training pairs.
    smoothing : float, default 0.5
        Pseudo-count added to each (shared, unshared) count.
    random_state : int, default 0
        Seed of the cross-fitting folds.

    Input ``X`` is a pandas DataFrame with columns ``sentence1`` and
    ``sentence2`` (else its first two columns), a 2-D array or a list of
    ``(sentence1, sentence2)`` pairs; every value must be a ``str``.

    Attributes learned by :meth:`fit` (from the pairs of ``X`` only):
    ``word_idf_``, ``stem_idf_``, ``bigram_idf_``, ``char_idf_`` (token -> IDF),
    ``default_idf_`` (IDF of an unseen token), ``term_stats_`` (term ->
    (log-odds if shared, log-odds if unshared, TF-KLD weight)),
    ``n_documents_``, ``n_features_out_``.
    """

    def __init__(self, char_ngram: int = 3, min_df: int = 1, supervised: bool = True,
                 cv_folds: int = 5, smoothing: float = 0.5, random_state: int = 0) -> None:
        self.char_ngram = char_ngram
        self.min_df = min_df
        self.supervised = supervised
        self.cv_folds = cv_folds
        self.smoothing = smoothing
        self.random_state = random_state

    # -- scikit-learn API -------------------------------------------------

    def fit(self, X, y=None):
        pairs = to_pairs(X)
        if not pairs:
            raise ValueError("PairFeaturizer.fit needs at least one sentence pair")
        self._fit(pairs, y)
        return self

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        pairs = to_pairs(X)
        if not pairs:
            raise ValueError("PairFeaturizer.fit needs at least one sentence pair")
        sentences = self._fit(pairs, y)
        out = np.empty((len(pairs), self.n_features_out_), dtype=np.float64)
        n_lex = len(FEATURE_NAMES)
        for i in range(len(pairs)):
            out[i, :n_lex] = self._pair_features(sentences[2 * i], sentences[2 * i + 1])
        if self.supervised:
            terms = [(_terms(sentences[2 * i]), _terms(sentences[2 * i + 1])) for i in range(len(pairs))]
            target = _binary_target(y) if y is not None else None
            if target is None:
                out[:, n_lex:] = 0.0
            else:
                for fold_idx in _folds(target, self.cv_folds, self.random_state):
                    mask = np.ones(len(pairs), dtype=bool)
                    mask[fold_idx] = False
                    stats = self._term_stats(terms, target, mask)
                    for i in fold_idx:
                        out[i, n_lex:] = _supervised_features(*terms[i], stats)
        return out

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "word_idf_")
        pairs = to_pairs(X)
        out = np.empty((len(pairs), self.n_features_out_), dtype=np.float64)
        n_lex = len(FEATURE_NAMES)
        for i, (s1, s2) in enumerate(pairs):
            a, b = _Sentence(s1), _Sentence(s2)
            out[i, :n_lex] = self._pair_features(a, b)
            if self.supervised:
                out[i, n_lex:] = (_supervised_features(_terms(a), _terms(b), self.term_stats_)
                                  if self.term_stats_ else 0.0)
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "word_idf_")
        names = FEATURE_NAMES + (SUPERVISED_FEATURE_NAMES if self.supervised else ())
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = True
        return tags

    # -- learning ---------------------------------------------------------

    def _fit(self, pairs, y) -> list["_Sentence"]:
        if y is not None and len(y) != len(pairs):
            raise ValueError(f"X has {len(pairs)} pairs but y has {len(y)} labels")
        docs = [_Sentence(s) for pair in pairs for s in pair]
        n = len(docs)
        word_df: Counter = Counter()
        stem_df: Counter = Counter()
        bigram_df: Counter = Counter()
        char_df: Counter = Counter()
        for d in docs:
            word_df.update(set(d.words))
            stem_df.update(set(d.stems))
            bigram_df.update(set(zip(d.stems, d.stems[1:])))
            char_df.update(_char_ngrams(d.lower, self.char_ngram))
        self.n_documents_ = n
        self.default_idf_ = math.log((1 + n) / 1) + 1

        def idf(df: Counter) -> dict:
            return {t: math.log((1 + n) / (1 + c)) + 1 for t, c in df.items() if c >= self.min_df}

        self.word_idf_ = idf(word_df)
        self.stem_idf_ = idf(stem_df)
        self.bigram_idf_ = idf(bigram_df)
        self.char_idf_ = idf(char_df)
        self.term_stats_ = {}
        if self.supervised and y is not None:
            target = _binary_target(y)
            if target is not None:
                terms = [(_terms(docs[2 * i]), _terms(docs[2 * i + 1])) for i in range(len(pairs))]
                self.term_stats_ = self._term_stats(terms, target, np.ones(len(pairs), dtype=bool))
        self.n_features_in_ = 2
        self.n_features_out_ = len(FEATURE_NAMES) + (len(SUPERVISED_FEATURE_NAMES) if self.supervised else 0)
        return docs

    def _term_stats(self, terms, target, mask) -> dict:
        """term -> (log-odds if shared, log-odds if unshared, TF-KLD weight)."""
        counts: dict = {}
        for (ta, tb), label, use in zip(terms, target, mask):
            if not use:
                continue
            for t in ta & tb:
                c = counts.setdefault(t, [0, 0, 0, 0])
                c[2 * label] += 1  # shared: index 0 (label 0) / 2 (label 1)
            for t in ta ^ tb:
                c = counts.setdefault(t, [0, 0, 0, 0])
                c[2 * label + 1] += 1  # unshared: index 1 / 3
        a = self.smoothing
        stats = {}
        for t, (s0, u0, s1, u1) in counts.items():
            p = (s1 + a) / (s1 + u1 + 2 * a)  # P(shared | in the pair, paraphrase)
            q = (s0 + a) / (s0 + u0 + 2 * a)  # P(shared | in the pair, not paraphrase)
            kld = p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
            stats[t] = (math.log(p / q), math.log((1 - p) / (1 - q)), kld)
        return stats

    # -- features ---------------------------------------------------------

    def _idf_mass(self, tokens, table) -> float:
        # fsum: exactly rounded, so the result does not depend on set order
        # (which changes with the process's string hash seed).
        default = self.default_idf_
        return math.fsum(table.get(t, default) for t in tokens)

    def _cosine(self, a: Counter, b: Counter, table: dict) -> float:
        if not a or not b:
            return 0.0
        default = self.default_idf_
        wa = {t: c * table.get(t, default) for t, c in a.items()}
        wb = {t: c * table.get(t, default) for t, c in b.items()}
        dot = sum(v * wb[t] for t, v in wa.items() if t in wb)
        if not dot:
            return 0.0
        na = math.sqrt(sum(v * v for v in wa.values()))
        nb = math.sqrt(sum(v * v for v in wb.values()))
        return dot / (na * nb)

    def _pair_features(self, a: _Sentence, b: _Sentence) -> list[float]:
        f: list[float] = []
        wa = [_ngrams(a.words, n) for n in range(1, 5)]
        wb = [_ngrams(b.words, n) for n in range(1, 5)]
        for n in range(4):
            f.extend(_overlap(wa[n], wb[n]))
        sa = [_ngrams(a.stems, n) for n in (1, 2)]
        sb = [_ngrams(b.stems, n) for n in (1, 2)]
        for n in range(2):
            f.extend(_overlap(sa[n], sb[n]))
        ca = [_ngrams(a.content, n) for n in (1, 2)]
        cb = [_ngrams(b.content, n) for n in (1, 2)]
        for n in range(2):
            f.extend(_overlap(ca[n], cb[n]))
        char_sets = {}
        for n in (2, 3, 4, 5):
            xa, xb = _char_ngrams(a.lower, n), _char_ngrams(b.lower, n)
            char_sets[n] = (xa, xb)
            f.extend(_set_overlap(xa, xb))

        # BLEU in both directions.
        b12 = _bleu(a.words, b.words, wa, wb)
        b21 = _bleu(b.words, a.words, wb, wa)
        f.extend((min(b12, b21), max(b12, b21), (b12 + b21) / 2))

        # LCS / ROUGE-L, longest common run, edit distances.
        ta, tb = a.words[:MAX_TOKENS], b.words[:MAX_TOKENS]
        lcs, run = _lcs(ta, tb)
        la, lb = max(len(ta), 1), max(len(tb), 1)
        lcs_p, lcs_r = lcs / la, lcs / lb
        f.extend((min(lcs_p, lcs_r), max(lcs_p, lcs_r), _harmonic(lcs_p, lcs_r)))
        f.extend((min(run / la, run / lb), max(run / la, run / lb)))
        longest = max(la, lb)
        f.append(_edit_distance(ta, tb) / longest)
        f.append(_edit_distance(a.stems[:MAX_TOKENS], b.stems[:MAX_TOKENS]) / longest)
        # SequenceMatcher is greedy, so not symmetric: compare in a canonical order.
        c1, c2 = sorted((a.chars, b.chars))
        f.append(SequenceMatcher(None, c1, c2, autojunk=False).ratio() if c1 and c2 else 0.0)

        # IDF-weighted overlap (word types), content stems, unmatched mass.
        widf = self.word_idf_
        ta_set, tb_set = set(a.words), set(b.words)
        shared = self._idf_mass(ta_set & tb_set, widf)
        ma, mb = self._idf_mass(ta_set, widf), self._idf_mass(tb_set, widf)
        p = shared / ma if ma else 0.0
        r = shared / mb if mb else 0.0
        f.extend(_min_max_f(p, r))
        sidf = self.stem_idf_
        ka, kb = set(a.content), set(b.content)
        shared = self._idf_mass(ka & kb, sidf)
        ma, mb = self._idf_mass(ka, sidf), self._idf_mass(kb, sidf)
        f.extend((min(shared / ma if ma else 0.0, shared / mb if mb else 0.0),
                  max(shared / ma if ma else 0.0, shared / mb if mb else 0.0)))
        ua, ub = self._idf_mass(ka - kb, sidf), self._idf_mass(kb - ka, sidf)
        f.extend((max(ua, ub), ua + ub))

        # TF-IDF cosines.
        f.append(self._cosine(wa[0], wb[0], widf))
        f.append(self._cosine(Counter(zip(a.stems, a.stems[1:])), Counter(zip(b.stems, b.stems[1:])),
                              self.bigram_idf_))
        n = self.char_ngram
        f.append(self._cosine(Counter(a.lower[i:i + n] for i in range(len(a.lower) - n + 1)),
                              Counter(b.lower[i:i + n] for i in range(len(b.lower) - n + 1)),
                              self.char_idf_))
        f.append(self._cosine(sa[0], sb[0], sidf))

        # Length.
        na, nb = len(a.words), len(b.words)
        f.extend((min(na, nb), max(na, nb), abs(na - nb), min(na, nb) / max(na, nb, 1)))
        ca_len, cb_len = len(a.lower), len(b.lower)
        f.extend((abs(ca_len - cb_len), min(ca_len, cb_len) / max(ca_len, cb_len, 1)))

        # Unmatched content words (after stemming), names.
        un_a, un_b = len(ka - kb), len(kb - ka)
        f.extend((min(un_a, un_b), max(un_a, un_b), un_a + un_b))
        f.append(len(a.caps ^ b.caps))
        f.append(_set_overlap(a.caps, b.caps)[0] if a.caps or b.caps else 1.0)

        # Numbers, dates, negation.
        xa, xb = a.numbers, b.numbers
        f.extend((
            float(bool(xa or xb)),
            float(bool(xa and xb)),
            float(xa == xb),
            len(xa & xb) / len(xa | xb) if xa or xb else 1.0,
            float(xa <= xb or xb <= xa),
            len(xa ^ xb),
        ))
        da, db = a.dates, b.dates
        f.extend((float(bool(da or db)), float(da == db), len(da ^ db)))
        f.extend((float(bool(a.negations or b.negations)),
                  float((a.negations > 0) != (b.negations > 0))))
        return f


def _terms(s: _Sentence) -> frozenset:
    """Stems and stem bigrams of a sentence (the units of the label-aware features)."""
    return frozenset(s.stems) | frozenset(a + " " + b for a, b in zip(s.stems, s.stems[1:]))


def _supervised_features(ta: frozenset, tb: frozenset, stats: dict) -> tuple[float, float, float]:
    # Sums over sets use math.fsum (exactly rounded): the same value whatever
    # the iteration order, which changes with the process's string hash seed.
    shared_lo: list[float] = []
    unshared_lo: list[float] = []
    dot: list[float] = []
    na: list[float] = []
    nb: list[float] = []
    for t in ta | tb:
        st = stats.get(t)
        if st is None:
            continue
        w2 = st[2] * st[2]
        in_a, in_b = t in ta, t in tb
        if in_a and in_b:
            shared_lo.append(st[0])
            dot.append(w2)
        else:
            unshared_lo.append(st[1])
        if in_a:
            na.append(w2)
        if in_b:
            nb.append(w2)
    sa, sb = math.fsum(na), math.fsum(nb)
    cosine = math.fsum(dot) / math.sqrt(sa * sb) if sa and sb else 0.0
    unshared = math.fsum(unshared_lo)
    return math.fsum(shared_lo) + unshared, unshared, cosine


def _binary_target(y) -> np.ndarray | None:
    """0/1 labels as ints; real values split at the median; None if one class only."""
    y = np.asarray(y, dtype=np.float64)
    values = np.unique(y)
    if len(values) < 2:
        return None
    if set(values.tolist()) <= {0.0, 1.0}:
        return y.astype(np.int64)
    return (y > np.median(y)).astype(np.int64)


def _folds(target: np.ndarray, n_folds: int, random_state: int) -> list[np.ndarray]:
    """Stratified folds of row indices (at most one fold per member of the smaller class)."""
    rng = np.random.default_rng(random_state)
    n_folds = max(2, min(n_folds, int(np.bincount(target).min()) or 2))
    assignment = np.empty(len(target), dtype=np.int64)
    for label in np.unique(target):
        idx = np.flatnonzero(target == label)
        rng.shuffle(idx)
        assignment[idx] = np.arange(len(idx)) % n_folds
    return [np.flatnonzero(assignment == k) for k in range(n_folds)]


def to_pairs(X) -> list[tuple[str, str]]:
    """``X`` as a list of ``(sentence1, sentence2)`` string pairs.

    Accepts a DataFrame (columns ``sentence1``/``sentence2``, else the first
    two), a 2-D array or a sequence of pairs. Raises ``TypeError`` /
    ``ValueError`` naming the first bad row.
    """
    if hasattr(X, "columns") and hasattr(X, "iloc"):  # pandas DataFrame
        cols = ["sentence1", "sentence2"] if {"sentence1", "sentence2"} <= set(X.columns) else list(X.columns[:2])
        if len(cols) != 2:
            raise ValueError(f"expected 2 columns (sentence1, sentence2), got {len(X.columns)}")
        rows = zip(X[cols[0]].tolist(), X[cols[1]].tolist())
    else:
        if isinstance(X, np.ndarray) and X.ndim != 2:
            raise ValueError(f"expected a 2-D array of sentence pairs, got shape {X.shape}")
        rows = X
    pairs = []
    for i, row in enumerate(rows):
        if len(row) != 2:
            raise ValueError(f"row {i}: expected 2 sentences, got {len(row)}")
        s1, s2 = row[0], row[1]
        if not isinstance(s1, str) or not isinstance(s2, str):
            raise TypeError(f"row {i}: sentences must be strings, got {type(s1).__name__}, {type(s2).__name__}")
        pairs.append((s1, s2))
    return pairs
