"""Checks the expected scores of tools/src/test/resources/longbench/metric-cases.jsonl against
LongBench's own metrics.py, the reference that LongBenchMetricsTest's values must agree with.

    python3 longbench_metrics_reference.py LONGBENCH_DIR [CASES]

LONGBENCH_DIR is the LongBench folder of a LongBench checkout (it holds metrics.py); metrics.py
imports jieba, fuzzywuzzy and rouge (the PyPI package "rouge", 1.0.x), which must be installed.
LongBench's requirements install fuzzywuzzy without python-Levenshtein, so its fuzz.ratio uses
difflib; where python-Levenshtein is installed this script puts difflib back, and also prints what
Levenshtein would give where that differs. Exit 1 if any case disagrees.
"""
import difflib
import json
import os
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.path.insert(0, sys.argv[1])
    cases = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(__file__), "..", "resources", "longbench", "metric-cases.jsonl")
    import metrics  # LongBench's
    import fuzzywuzzy.fuzz as fuzz
    levenshtein_matcher = fuzz.SequenceMatcher
    fuzz.SequenceMatcher = difflib.SequenceMatcher

    by_name = {
        "qa_f1": metrics.qa_f1_score,
        "rouge_l": metrics.rouge_score,
        "classification": metrics.classification_score,
        "count": metrics.count_score,
        "retrieval": metrics.retrieval_score,
        "retrieval_zh": metrics.retrieval_zh_score,
        "code_sim": metrics.code_sim_score,
    }
    bad = 0
    with open(cases, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            c = json.loads(line)
            got = by_name[c["metric"]](c["prediction"], c["answer"], all_classes=c["all_classes"])
            ok = abs(got - c["expected"]) <= 1e-9
            bad += not ok
            note = ""
            if c["metric"] == "code_sim" and levenshtein_matcher is not difflib.SequenceMatcher:
                fuzz.SequenceMatcher = levenshtein_matcher
                lev = metrics.code_sim_score(c["prediction"], c["answer"])
                fuzz.SequenceMatcher = difflib.SequenceMatcher
                if lev != got:
                    note = f"  (with python-Levenshtein: {lev})"
            print(f"{'ok ' if ok else 'BAD'} {n:3d} {c['metric']:15s} expected {c['expected']:.10f} LongBench {got:.10f}{note}")
    print(f"{n - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
