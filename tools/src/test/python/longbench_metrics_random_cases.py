"""Writes tools/src/test/resources/longbench/metric-reference.jsonl: seeded random cases for every
LongBench metric tenfold implements, each scored by LongBench's own metrics.py (fuzzywuzzy on
difflib, as LongBench's requirements install it), for LongBenchMetricsTest to compare with.

    python3 longbench_metrics_random_cases.py LONGBENCH_DIR [OUT]

Needs jieba, fuzzywuzzy and rouge (the PyPI package, 1.0.x) importable, as metrics.py imports them.
"""
import difflib
import json
import os
import random
import sys

WORDS = ["the", "a", "an", "cat", "Cat", "sat", "on", "mat", "dog", "ran", "far", "away", "and", "then",
         "U.S.", "it's", "theater", "Paris", "2019", "x", "y", "über", "naïve"]
SPACES = [" ", " ", " ", " ", "  ", "\n", "\t", "\u00a0", "\u2003"]
PUNCT = ["", "", "", ",", ".", ".", "!", "?", ";", "'", "\"", "-"]
CLASSES = ["Other", "Other location", "Location", "City", "Country", "Person", "Abbreviation",
           "Expression abbreviated", "Date", "Number of something", "Number"]
CODE_ALPHABET = "abcxyz_ ()=+.,:0123\t"


def text(rng, n):
    out = []
    for _ in range(n):
        out.append(rng.choice(WORDS) + rng.choice(PUNCT))
        out.append(rng.choice(SPACES))
    return "".join(out).strip() if rng.random() < 0.8 else "".join(out)


def code_line(rng, n):
    return "".join(rng.choice(CODE_ALPHABET) for _ in range(n))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.path.insert(0, sys.argv[1])
    out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(__file__), "..", "resources", "longbench", "metric-reference.jsonl")
    import metrics  # LongBench's
    import fuzzywuzzy.fuzz as fuzz
    fuzz.SequenceMatcher = difflib.SequenceMatcher

    rng = random.Random(17)
    cases = []

    def add(metric, fn, pred, ans, classes=None):
        cases.append(dict(metric=metric, prediction=pred, answer=ans, all_classes=classes,
                          expected=fn(pred, ans, all_classes=classes)))

    for _ in range(60):
        add("qa_f1", metrics.qa_f1_score, text(rng, rng.randint(0, 12)), text(rng, rng.randint(1, 6)))
    for _ in range(60):
        add("rouge_l", metrics.rouge_score, text(rng, rng.randint(0, 60)), text(rng, rng.randint(1, 60)))
    for _ in range(40):
        classes = rng.sample(CLASSES, rng.randint(3, len(CLASSES)))
        named = rng.sample(classes, rng.randint(0, 3))
        answer = rng.choice(named) if named and rng.random() < 0.6 else rng.choice(classes)
        add("classification", metrics.classification_score, " or ".join(named) + rng.choice(["", ".", "\nmore"]),
            answer, classes)
    for _ in range(30):
        nums = [str(rng.randint(0, 6)) for _ in range(rng.randint(0, 4))]
        add("count", metrics.count_score, " and ".join(nums) + " paragraphs", str(rng.randint(0, 6)))
    for _ in range(30):
        nums = ["Paragraph " + str(rng.randint(1, 4)) for _ in range(rng.randint(0, 3))]
        add("retrieval", metrics.retrieval_score, ", ".join(nums), "Paragraph " + str(rng.randint(1, 4)))
    for _ in range(20):
        nums = ["段落" + str(rng.randint(1, 4)) for _ in range(rng.randint(0, 3))]
        add("retrieval_zh", metrics.retrieval_zh_score, "，".join(nums), "段落" + str(rng.randint(1, 4)))
    for _ in range(80):
        answer = code_line(rng, rng.choice([rng.randint(1, 60), rng.randint(150, 320)]))
        lines = []
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            if r < 0.2:
                lines.append("# " + code_line(rng, 10))
            elif r < 0.3:
                lines.append("")
            elif r < 0.6:  # a near copy of the answer
                s = list(answer)
                for _ in range(rng.randint(0, 8)):
                    if s:
                        s[rng.randrange(len(s))] = rng.choice(CODE_ALPHABET)
                lines.append("".join(s))
            else:
                lines.append(code_line(rng, rng.randint(1, 250)))
        add("code_sim", metrics.code_sim_score, rng.choice(["", "\n", "\n\n"]) + "\n".join(lines), answer)

    with open(out_path, "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases written to {out_path}")


if __name__ == "__main__":
    main()
