"""Hashtags from the key phrases of a paper's title and context (YAKE)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agents.checks.hashtags import hashtags_for

DATA = Path(__file__).resolve().parents[2] / "data"
PAPERS = json.loads((DATA / "papers.json").read_text(encoding="utf-8"))
RESNET = (
    "Deep Residual Learning for Image Recognition",
    "Deeper neural networks are more difficult to train. A residual learning framework eases "
    "the training of networks that are substantially deeper. An ensemble of residual nets "
    "achieves 3.57% error on the ImageNet test set and won the ILSVRC classification task.",
)
GENERIC = {"learning", "deep", "image", "model", "models", "paper", "network", "networks"}


def test_key_phrases_become_camel_case_tags() -> None:
    assert hashtags_for(*RESNET, 5) == [
        "ImageRecognition",
        "DeepResidualLearning",
        "ILSVRC",
        "ImageNet",
    ]
    lora = next(p for p in PAPERS if p["id"] == "lora")
    assert hashtags_for(lora["title"], lora["context"], 4) == [
        "LargeLanguageModels",
        "LowRankAdaptation",
        "LoRA",
        "FullFineTuning",  # twice in the context: a phrase, not a chance word pair
    ]
    assert hashtags_for("Segment Anything", "SAM segments. SAM is promptable.", 5)[0] == (
        "SegmentAnything"
    )


@pytest.mark.parametrize("paper", PAPERS, ids=[p["id"] for p in PAPERS])
def test_tags_are_words_unique_capped_and_never_a_generic_word(paper: dict) -> None:
    tags = hashtags_for(paper["title"], paper["context"], 5)
    assert 1 <= len(tags) <= 5
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", t) for t in tags), tags
    assert not {t.lower() for t in tags} & GENERIC, tags
    singular = [t.lower().rstrip("s") for t in tags]
    assert len(set(singular)) == len(singular), tags
    assert hashtags_for(paper["title"], paper["context"], 2) == tags[:2]


def test_no_near_duplicates_and_the_cap_holds() -> None:
    text = "Transformers and transformer models. Language models and large language models."
    tags = hashtags_for("Large Language Models with Transformers", text, 10)
    lowered = [t.lower() for t in tags]
    assert "languagemodels" not in lowered  # contained in LargeLanguageModels
    assert sum(t.startswith("transformer") for t in lowered) == 1
    assert hashtags_for(*RESNET, 1) == ["ImageRecognition"]
    assert hashtags_for(*RESNET, 0) == [] and hashtags_for("", "", 5) == []


def test_same_input_same_tags_across_processes() -> None:
    code = (
        "import json,sys; from agents.checks.hashtags import hashtags_for; "
        "print(json.dumps(hashtags_for(sys.argv[1], sys.argv[2], 5)))"
    )
    root = Path(__file__).resolve().parents[3]
    runs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code, *RESNET], cwd=root, env=env, check=True,
            capture_output=True, text=True,
        )  # fmt: skip
        runs.add(out.stdout.strip())
    assert runs == {json.dumps(hashtags_for(*RESNET, 5))}
