"""Build the toy test model: ``python build.py OUT_DIR [WORK]`` (model.joblib + code/; WORK: CPU loop
iterations per pair, ~25,000 per ms)."""

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "code"))

import joblib  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from toyfeat import OverlapFeatures  # noqa: E402

PAIRS = [
    ("the cat sat on the mat", "a cat sat on the mat", 1),
    ("stocks fell sharply today", "shares dropped sharply today", 1),
    ("he went home early", "he left for home early", 1),
    ("the sky is blue", "bananas are yellow fruit", 0),
    ("I like tea", "the train was late again", 0),
    ("profits rose in march", "the dog barked loudly", 0),
]


def main(out, work=0):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    X = [[a, b] for a, b, _ in PAIRS]
    y = [label for *_, label in PAIRS]
    model = Pipeline([("features", OverlapFeatures(work=work)), ("clf", LogisticRegression())]).fit(X, y)
    joblib.dump(model, out / "model.joblib")
    shutil.copytree(HERE / "code", out / "code", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (out / "model_info.json").write_text('{"problem_type": "BinaryClassification"}\n')


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
