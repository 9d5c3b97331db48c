"""Claim-level grounding, reader's voice and filler hooks in focused cases, and every
post check on the development set (tests/data: real papers, posts with planted flaws,
clean posts; `tests.devset`)."""

from __future__ import annotations

from typing import Any

import pytest

from agents.checks.claims import quantities
from agents.checks.entities import SourceIndex, phrases
from agents.checks.grounding import UnsupportedClaim, check_grounding
from agents.checks.sentences import split_sentences
from agents.checks.voice import author_voice_issues, filler_hook
from tests import devset

PAPERS = devset.papers()
POSTS: list[dict[str, Any]] = devset.posts()
FLAWED = [p for p in POSTS if p["flaw"]]
CLEAN = [p for p in POSTS if not p["flaw"]]
CATCHES = devset.CATCHES

LORA = PAPERS["lora"]
LORA_SOURCE = {"title": LORA["title"], "context": LORA["context"]}


def claims(post: str, *, title: str = LORA["title"], context: str = LORA["context"]) -> list:
    return [(c.kind, c.reason) for c in check_grounding(post, title=title, context=context)]


# --- the development set ---------------------------------------------------------------


def test_development_set_is_complete() -> None:
    assert len(PAPERS) >= 12 and len(FLAWED) >= 60 and len(CLEAN) >= 20
    titles = " ".join(p["title"].lower() for p in PAPERS.values())
    for classic in ("attention is all you need", "bert", "deep residual learning"):
        assert classic not in titles
    kinds = [p["flaw"] for p in FLAWED]
    assert set(kinds) == set(CATCHES)
    assert sum(kinds.count(k) >= 2 for k in CATCHES) >= 15  # most kinds at least twice
    for kind in ("UNSUPPORTED", "REPETITION", "RUN_ON", "MANGLED_TERM"):  # issue 19
        assert len({p["paper_id"] for p in FLAWED if p["flaw"] == kind}) >= 4, kind
    paraphrases = [p for p in CLEAN if p["id"].startswith("clean_paraphrase_")]
    assert len({p["paper_id"] for p in paraphrases}) >= 6
    assert len({p["id"] for p in POSTS}) == len(POSTS)
    for paper in PAPERS.values():
        assert 3 <= len(split_sentences(paper["context"])) <= 6, paper["id"]
        assert paper["facts"]
    for post in POSTS:
        assert post["paper_id"] in PAPERS
        assert not post["flaw"] or post["expect"]


@pytest.mark.parametrize("entry", FLAWED, ids=[p["id"] for p in FLAWED])
def test_every_planted_flaw_is_caught_for_its_reason(entry: dict[str, Any]) -> None:
    judged = devset.judge(entry)
    found = [(f.kind, f.issue) for f in devset.findings(entry)]
    assert CATCHES[entry["flaw"]] and judged.caught, found
    # ... and nothing else is reported: every finding is on a planted sentence (or is a
    # post-level flaw's own), so the rest of the post passes every check.
    assert all(n == right for n, right in judged.kinds.values()), found


@pytest.mark.parametrize("entry", CLEAN, ids=[p["id"] for p in CLEAN])
def test_every_clean_post_passes_every_check(entry: dict[str, Any]) -> None:
    assert [(f.kind, f.issue) for f in devset.findings(entry)] == []


# --- sentences ---------------------------------------------------------------------------


def test_split_sentences_keeps_lines_bullets_and_the_hashtag_line_apart() -> None:
    post = (
        "LoRA cuts parameters 10,000x, e.g. on GPT-3 175B. It adds no latency!\n\n"
        "Key takeaways:\n• Merged weights.\n- Same quality vs. full fine-tuning.\n"
        "What do you think?\n\n#LoRA #LLM"
    )
    assert split_sentences(post) == [
        "LoRA cuts parameters 10,000x, e.g. on GPT-3 175B.",
        "It adds no latency!",
        "Key takeaways:",
        "Merged weights.",
        "Same quality vs. full fine-tuning.",
        "What do you think?",
        "#LoRA #LLM",
    ]


def test_claims_are_reported_with_the_sentence_verbatim() -> None:
    post = "Great read.\n\nIt was published in Nature by OpenAI.\n\n#OpenAI #Nature"
    found = check_grounding(post, **LORA_SOURCE)
    assert found == [
        UnsupportedClaim(
            "It was published in Nature by OpenAI.",
            "ATTRIBUTION",
            "the post credits 'OpenAI', which the context does not name",
        ),
        UnsupportedClaim(
            "It was published in Nature by OpenAI.", "ENTITY", "'Nature' is not in the context"
        ),
    ]


# --- numbers and units -------------------------------------------------------------------


def test_quantities_are_normalised_with_their_units() -> None:
    found = [(q.value, q.unit) for q in quantities("10,000x, 175B parameters, 3.5 days, 5 %")]
    assert found == [(10000.0, "x"), (175e9, "parameter"), (3.5, "day"), (5.0, "%")]
    assert [q.raw for q in quantities("GPT-3 and T5-XXL on GSM8K in 2014")] == ["2014"]


def test_a_number_is_supported_only_with_its_unit() -> None:
    context = "The model reaches 28.4 BLEU and trains in 3.5 days on 1,000 GPUs."
    src = {"title": "A Paper", "context": context}
    assert claims("It reaches 28.4 BLEU after 3.5 days on 1000 GPUs.", **src) == []
    assert claims("It reaches a BLEU score of 28.4.", **src) == []
    assert claims("It reaches 28.4%.", **src) == [
        ("UNIT", "'28.4%' is not in the context (it has 28.4 BLEU)")
    ]
    assert claims("It trains in 3.5 hours.", **src) == [
        ("UNIT", "'3.5 hours' is not in the context (it has 3.5 days)")
    ]
    assert claims("It reaches 29.1 BLEU.", **src) == [
        ("NUMBER", "'29.1 BLEU' is not in the context (it has 28.4 BLEU)")
    ]


def test_magnitudes_multipliers_counts_and_approximations() -> None:
    assert claims("GPT-3 with 175 billion parameters needs 10,000 times fewer.") == []
    assert claims("It uses 3x less GPU memory, in two steps, with 3 takeaways.") == []
    assert claims("It uses 4x less GPU memory.") == [
        ("NUMBER", "'4x' is not in the context (it has 10,000 times, 3 times)")
    ]
    assert claims("QLoRA reaches about 99% of ChatGPT.", **_paper("qlora")) == []
    assert claims("QLoRA reaches 99% of ChatGPT.", **_paper("qlora")) == [
        ("NUMBER", "'99%' is not in the context (it has 99.3%)")
    ]


def _paper(paper_id: str) -> dict[str, str]:
    return {"title": PAPERS[paper_id]["title"], "context": PAPERS[paper_id]["context"]}


# --- dates ---------------------------------------------------------------------------------


def test_years_and_dates_must_be_in_the_context() -> None:
    src = {"title": "A Paper", "context": "It was released in June 2017 on 12 June."}
    assert claims("Released on 12 June 2017.", **src) == []
    assert claims("Released in 2018.", **src) == [("DATE", "the year '2018' is not in the context")]
    assert claims("Released on 30 June.", **src) == [
        ("DATE", "the date '30 June' is not in the context")
    ]
    assert claims("It came out in March, last week.", **src) == [
        ("DATE", "the date 'March' is not in the context"),
        ("DATE", "the date 'last week' is not in the context"),
    ]
    assert claims("This may change how we fine-tune.", **src) == []


# --- entities and attribution ------------------------------------------------------------


def test_entities_acronyms_and_expansions() -> None:
    index = SourceIndex("Published in the Journal of Machine Learning Research. Uses LLMs.")
    assert index.names("JMLR") and index.names("journal of machine learning research")
    assert index.names("Large Language Models")  # the expansion of "LLMs"
    assert SourceIndex("It evaluates Large Language Models (LLMs).").names("LLM")
    assert SourceIndex("LoRA: Low-Rank Adaptation").names("Low-Rank Adaptation model")
    assert not index.names("ICML")
    assert not SourceIndex("Meta AI Research").names("Allen Institute")


def test_entity_detection_ignores_sentence_initial_and_common_capitals() -> None:
    found = [p.text for p in phrases("Interestingly, Mamba beats Transformers on WMT.")]
    assert found == ["Mamba", "Transformers", "WMT"]
    assert [p.text for p in phrases("Key Takeaways: the authors show it. I think so.")] == []
    assert [p.text for p in phrases("Fine-tuning GPT-3 with OpenAI's API and LinkedIn.")] == [
        "GPT-3",
        "OpenAI",
    ]
    text = "It appeared in the Journal of Machine Learning Research with ImageNet."
    assert [p.text for p in phrases(text)] == ["Journal of Machine Learning Research", "ImageNet"]


def test_invented_entities_and_attributions() -> None:
    assert claims("The authors at Microsoft trained it on RoBERTa and GPT-2.") == []
    assert claims("LoRA was developed by OpenAI.") == [
        ("ATTRIBUTION", "the post credits 'OpenAI', which the context does not name")
    ]
    assert claims("Researchers at Google Brain evaluated it on ImageNet.") == [
        ("ATTRIBUTION", "the post credits 'Google Brain', which the context does not name"),
        ("ENTITY", "'ImageNet' is not in the context"),
    ]
    assert claims("Google DeepMind researchers liked it.") == [
        ("ATTRIBUTION", "the post credits 'Google DeepMind', which the context does not name")
    ]


# --- comparisons ---------------------------------------------------------------------------


def test_comparisons_need_the_same_idea_in_the_context() -> None:
    assert claims("LoRA is on par with or better than full fine-tuning.") == []
    assert claims("LoRA outperforms full fine-tuning.") == []  # "better" is in the context
    assert claims("LoRA is state-of-the-art and the first of its kind.") == [
        (
            "COMPARISON",
            "'state-of-the-art' (state-of-the-art) is a comparison the context does not make",
        ),
        ("COMPARISON", "'the first' (first) is a comparison the context does not make"),
    ]
    assert claims("LoRA trains faster than full fine-tuning.") == [
        ("COMPARISON", "'faster than' is a comparison the context does not make")
    ]
    assert claims("Is LoRA the best way to fine-tune?") == []  # a question is not a claim
    chinchilla = _paper("chinchilla")
    assert claims("It reaches state-of-the-art accuracy on MMLU.", **chinchilla) == []


# --- false-positive guards ---------------------------------------------------------------


def test_reader_framing_hashtags_and_bullets_are_not_claims() -> None:
    post = (
        "LoRA trains low-rank matrices and keeps GPT-3 175B frozen.\n\n"
        "How It Works\n"
        "• The authors merge the matrices into the weights.\n"
        "• This paper matters for AI, ML and NLP teams on LinkedIn.\n"
        "The researchers report 3 times less GPU memory. I found this paper interesting.\n"
        "What do you think?\n\n#LoRA #GenerativeAI #Microsoft2021 #NLP"
    )
    assert check_grounding(post, **LORA_SOURCE) == []
    assert author_voice_issues(post) == []


# --- reader's voice and hooks --------------------------------------------------------------


def test_author_voice_is_an_issue_and_reader_voice_is_not() -> None:
    for sentence in (
        "In this work we propose LoRA.",
        "Our paper shows it works.",
        "Our team trained GPT-3.",
        "We are pleased to announce our model.",
        "I am excited to share our latest results.",
    ):
        issues = author_voice_issues(f"LoRA is efficient.\n\n{sentence}\n\nThoughts?")
        assert len(issues) == 1 and f"'{sentence}'" in issues[0], sentence
    for sentence in (
        "I found this paper interesting.",
        "What do you think?",
        "Would we use this in our pipelines?",
        "The authors propose LoRA.",
    ):
        assert author_voice_issues(sentence) == [], sentence


def test_filler_hooks_are_issues_and_result_hooks_are_not() -> None:
    for hook in (
        'New paper worth your time: "LoRA"',
        "Exciting news! A new paper on fine-tuning.",
        "I'm excited to share this paper.",
        "Check out this paper on LoRA.",
        "In today's post: LoRA.",
        "Have you ever wondered how to fine-tune cheaply?",
        "🚀 Exciting news!",
    ):
        issue = filler_hook(hook)
        assert issue is not None and "filler" in issue and hook.strip() in issue, hook
    assert filler_hook("LoRA cuts trainable parameters 10,000 times.") is None
    assert filler_hook("Why does LoRA need 3x less GPU memory?") is None
