"""The checks a reader applies: support, sentence length, repetition, mangled
terms, the authors' voice and pronoun hooks, stock questions; the verifiers' scores and
approval; and what the writer calls (`rejected_sentences`, `sentence_problems`).

Each check has a case it must catch and one it must pass. Sentences reported from real
posts are used only in `test_reported_sentences_are_caught` and
`test_a_claim_moved_to_another_subject_is_missed` (regression cases; the thresholds were
tuned on the development set, see `test_support_threshold_splits_the_development_set`)."""

from __future__ import annotations

import pytest

from agents.checks import polarity, prose, rules, support, verdicts
from agents.checks.sentences import split_sentences
from agents.checks.style import style_report
from agents.checks.terms import mangled_terms
from agents.checks.voice import author_voice_issues, pronoun_hook
from agents.teams.verification import Judgement, build_report
from tests import devset

PAPERS = devset.papers()
LORA = {"title": PAPERS["lora"]["title"], "context": PAPERS["lora"]["context"]}
FLASH = {"title": PAPERS["flashattention"]["title"], "context": PAPERS["flashattention"]["context"]}
COT = {
    "title": PAPERS["chain_of_thought"]["title"],
    "context": PAPERS["chain_of_thought"]["context"],
}


def supported(sentence: str, source: dict[str, str] = LORA) -> bool:
    return support.sentence_support(sentence, **source).supported


# --- support ---------------------------------------------------------------------------


def test_support_counts_content_words_found_in_the_source() -> None:
    s = support.sentence_support("LoRA helps doctors read medical scans.", **LORA)
    assert s.scored and s.content == ("LoRA", "doctors", "medical", "scans")
    assert s.missing == ("doctors", "medical", "scans") and s.score == 0.25
    assert not s.supported
    issue = support.support_issue(s)
    assert issue.startswith('unsupported content: "LoRA helps doctors read medical scans."')
    assert "1 of 4 content words (25%)" in issue and "'doctors'" in issue
    assert supported("LoRA freezes the pretrained weights and trains low-rank matrices.")


def test_support_knows_lemmas_stems_and_the_contexts_acronyms() -> None:
    context = {
        "title": "A Paper",
        "context": "It reduces the matrix size. Curated data helps. It uses high bandwidth "
        "memory (HBM) and a state space model.",
    }
    assert supported("The matrices shrink through a reduction of size.", context)  # lemma, stem
    assert supported("Curation of the HBM data matters.", context)  # stem, acronym
    assert supported("The SSM reduces memory.", context)  # "SSM" spells "state space model"
    assert not supported("Tokenizers shrink vocabularies.", context)
    spelled = {"title": "A Paper", "context": "Reads go to HBM and on-chip SRAM."}
    assert supported("Reads go to high bandwidth memory (HBM) and SRAM.", spelled)
    assert not supported("Reads go to high bandwidth memory and SRAM.", spelled)


def test_support_leaves_questions_headings_and_framing_unscored() -> None:
    for sentence in (
        "Would doctors read medical scans with it?",
        "Key takeaways:",
        "I found this paper worth a read.",
        "It is simple.",
        "#Medical #Scans",
    ):
        s = support.sentence_support(sentence, **LORA)
        assert not s.scored and s.supported, sentence
    assert support.content_words("The authors share their findings in this paper.") == []


def test_support_threshold_splits_the_development_set() -> None:
    """The figures `support.SUPPORT_THRESHOLD` documents: every sentence of the clean
    posts passes, every planted unsupported sentence fails."""
    clean, unsupported = [], []
    for entry in devset.posts():
        paper = PAPERS[entry["paper_id"]]
        source = {"title": paper["title"], "context": paper["context"]}
        if entry["flaw"] is None:
            clean += [(s, source) for s in split_sentences(entry["post"])]
        elif entry["flaw"] == "UNSUPPORTED":
            unsupported += [(s, source) for s in devset.planted_sentences(entry)]
    assert len(unsupported) >= 14 and len(clean) >= 150
    scores = [support.sentence_support(s, **src) for s, src in clean]
    assert min(s.score for s in scores if s.scored) >= support.SUPPORT_THRESHOLD
    failing = [support.sentence_support(s, **src) for s, src in unsupported]
    assert all(s.scored and not s.supported for s in failing)


# --- length ------------------------------------------------------------------------------


def test_word_count_counts_a_quoted_title_as_one_word() -> None:
    assert prose.word_count("GPT-3 175B cuts 10,000x (HBM) - e.g. this.") == 7
    assert (
        prose.word_count(f'In "{LORA["title"]}", the authors freeze it.', title=LORA["title"]) == 6
    )
    assert prose.word_count("LoRA is small. #LoRA https://arxiv.org/abs/2106.09685") == 3


def test_a_sentence_over_25_words_is_an_issue() -> None:
    ok = " ".join(["word"] * 24) + " end."
    assert prose.word_count(ok) == prose.MAX_SENTENCE_WORDS
    assert prose.long_sentence_issue(ok) is None
    long = " ".join(["word"] * 25) + " end."
    issue = prose.long_sentence_issue(long)
    assert issue and issue.startswith(f'long sentence: "{long}" has 26 words; at most 25')
    title = LORA["title"]
    quoted = f'The paper "{title}" freezes weights and ' + " ".join(["adds"] * 19) + "."
    assert prose.word_count(quoted, title=title) == 25
    assert prose.long_sentence_issue(quoted, title=title) is None
    assert prose.long_sentence_issue("#" + " #".join(["Tag"] * 30)) is None


# --- repetition ----------------------------------------------------------------------------


def _repeated(post: str, title: str = "") -> list[tuple[str, str, bool]]:
    return [(r.sentence, r.phrase, r.whole) for r in prose.repetitions(post, title=title)]


def test_a_repeated_sentence_is_an_issue_the_first_time_is_not() -> None:
    post = "LoRA freezes the weights. It adds small matrices.\n\n• LoRA freezes the weights!"
    found = prose.repetitions(post)
    assert [(r.sentence, r.whole) for r in found] == [("LoRA freezes the weights!", True)]
    assert found[0].issue.startswith('repeated sentence: "LoRA freezes the weights!"')
    near = "It adapts this technique to new tasks. It adapts this technology to new tasks."
    assert [r.whole for r in prose.repetitions(near)] == [True]
    assert prose.repetitions("LoRA freezes the weights. It adds small matrices.") == []


def test_a_phrase_of_five_words_said_twice_is_an_issue() -> None:
    post = (
        "LoRA keeps the pretrained weights frozen during training. "
        "Quality stays high because it keeps the pretrained weights frozen."
    )
    assert _repeated(post) == [
        (
            "Quality stays high because it keeps the pretrained weights frozen.",
            "keeps the pretrained weights frozen",
            False,
        )
    ]
    within = "It cuts GPU memory use a lot and, in the end, it cuts GPU memory use again."
    assert [p for _, p, _ in _repeated(within)] == ["it cuts gpu memory use"]
    rep = prose.repetitions(post)[0]
    assert rep.issue == (
        'repeated phrase: "keeps the pretrained weights frozen" appears again in '
        '"Quality stays high because it keeps the pretrained weights frozen."'
    )


def test_what_is_not_a_repeated_phrase() -> None:
    title = LORA["title"]
    assert _repeated(f'"{title}" is short. I liked "{title}" a lot.', title) == []
    assert _repeated("It keeps the weights frozen. Then it keeps the weights.") == []  # 4 words
    assert _repeated("It is at the end of the day. We meet at the end of the road.") == []
    assert _repeated(
        "It adds reasoning steps, in the prompt. Add reasoning steps in the prompt!"
    ) == [("Add reasoning steps in the prompt!", "add reasoning steps in the prompt", True)]
    assert _repeated("It adds reasoning steps in the prompt. Steps, in the prompt, help.") == []
    assert _repeated("#LoRA #FineTuning #LargeLanguageModels\n\n#LoRA #FineTuning") == []


# --- mangled terms --------------------------------------------------------------------------


def test_a_hyphenated_term_written_with_mixed_separators_is_an_issue() -> None:
    assert mangled_terms("It uses low -rank matrices.", **LORA) == [
        "mangled term: 'low -rank' in \"It uses low -rank matrices.\"; the context writes "
        "'low-rank'"
    ]
    switch = {"title": "Switch", "context": "Mixture-of-experts (MoE) models route tokens."}
    assert mangled_terms("A mixture of-experts model.", **switch) != []
    for fine in ("A mixture-of-experts model.", "A mixture of experts model."):
        assert mangled_terms(fine, **switch) == [], fine


def test_a_name_in_another_case_or_a_stray_bracket_is_an_issue() -> None:
    assert mangled_terms("LoRA cuts Gpu memory.", **LORA) == [
        "mangled term: 'Gpu' in \"LoRA cuts Gpu memory.\"; the context writes 'GPU'"
    ]
    assert mangled_terms("Lora freezes weights.", **LORA)[0].startswith("mangled term: 'Lora'")
    assert "a '(' without its ')'" in mangled_terms("It (cuts memory.", **LORA)[0]
    assert "a ')' without its '('" in mangled_terms("It cuts) memory.", **LORA)[0]
    assert "empty brackets" in mangled_terms("It cuts () memory.", **LORA)[0]
    for fine in (
        "LoRA cuts GPU memory on GPUs (3 times).",
        "Low-Rank adaptation in low-rank form.",  # capitals of a word, not of a name
        "It works. #gpu #lora",
    ):
        assert mangled_terms(fine, **LORA) == [], fine
    it = {"title": "A Paper", "context": "Our IT team uses it."}
    assert mangled_terms("It is what it is.", **it) == []


def test_the_papers_coined_name_in_lower_case_is_an_issue_even_first() -> None:
    toolformer = {
        "title": PAPERS["toolformer"]["title"],
        "context": PAPERS["toolformer"]["context"],
    }
    for sentence in (
        "toolformer decides which APIs to call.",
        "The model, toolformer, decides which APIs to call.",
    ):
        assert mangled_terms(sentence, **toolformer) == [
            f"mangled term: 'toolformer' in \"{sentence}\"; the context writes 'Toolformer'"
        ]
    assert mangled_terms("Toolformer decides which APIs to call.", **toolformer) == []
    # a name that is also an English word may be written as the word
    sam = {"title": PAPERS["sam"]["title"], "context": PAPERS["sam"]["context"]}
    assert mangled_terms("What would you segment first?", **sam) == []


# --- the authors' voice and the hook ----------------------------------------------------------


def test_the_authors_voice_beyond_we_propose() -> None:
    for sentence in (
        "In this work, we investigate tool use.",
        "Here we scale the Vision Transformer.",
        "We also examine the gains.",
        "It shows our capacity to train large models.",
        "Our novel method is fast.",
    ):
        issues = author_voice_issues(sentence)
        assert len(issues) == 1 and sentence in issues[0], sentence
    for sentence in ("We use LoRA in our pipelines.", "Should we all try it?", "Here's why."):
        assert author_voice_issues(sentence) == [], sentence


def test_a_hook_opening_with_a_pronoun_that_refers_to_nothing_is_an_issue() -> None:
    for hook in ("They cut memory 3 times.", "Its memory drops.", "These results matter."):
        issue = pronoun_hook(hook)
        assert issue and issue.startswith(f"pronoun hook: '{hook}' opens with"), hook
    for hook in (
        "This paper cuts GPU memory 3 times.",
        "It turns out attention is enough.",
        "It's rare that a method cuts memory 3 times.",
        "LoRA cuts memory. It adds no latency.",
        "Items of note: LoRA.",
    ):
        assert pronoun_hook(hook) is None, hook


def test_a_stock_closing_question_is_a_soft_issue() -> None:
    post = "LoRA freezes the weights.\n\nWhat do you think?\n\n#LoRA"
    assert prose.stock_question(post, **LORA)
    report = style_report(post, 5, **LORA)
    assert report["passed"] and report["score"] == 0.75
    assert any(i.startswith('stock question: "What do you think?"') for i in report["issues"])
    specific = "LoRA freezes the weights.\n\nWould you pick LoRA over full fine-tuning?"
    assert prose.stock_question(specific, **LORA) is None
    assert prose.stock_question("LoRA freezes the weights.", **LORA) is None


# --- reports: findings, scores, approval -------------------------------------------------------

POST = (
    "LoRA freezes the pretrained weights of a large language model.\n\n"
    "It adds small trainable low-rank decomposition matrices to each layer. "
    "It helps doctors read medical scans. "
    "The Gpu memory requirement drops by 3 times.\n\n"
    "Would you pick LoRA over full fine-tuning?\n\n#LoRA"
)


def test_each_verifier_scores_the_share_of_its_sentences_that_pass() -> None:
    tech = verdicts.technical_report(POST, **LORA)
    assert not tech["passed"] and tech["sentences"] == 5 and tech["score"] == 0.8
    assert [f["kind"] for f in tech["findings"]] == ["SUPPORT"]
    assert tech["unsupported_content"][0]["sentence"] == "It helps doctors read medical scans."
    style = style_report(POST, 5, **LORA)
    assert not style["passed"] and style["score"] == 0.8
    assert [f["kind"] for f in style["findings"]] == ["MANGLED_TERM"]
    assert rules.sentence_score(4, 1, 1) == 0.5 and rules.sentence_score(0, 0) == 1.0


def test_a_new_hard_issue_is_never_approved_whatever_the_model_says() -> None:
    long = (
        "LoRA freezes the pretrained weights and adds small trainable low-rank decomposition "
        "matrices to each layer so that full fine-tuning of GPT-3 needs far less GPU memory."
    )
    post = f"{long} LoRA adds no inference latency.\n\nWould you pick LoRA?\n\n#LoRA"
    check = style_report(post, 5, **LORA)
    assert check["score"] > 0.5 and not check["passed"]
    yes = Judgement(score=1.0, approved=True, issues=[])
    report = build_report(agent="style_checker", kind="STYLE", check=check, judgement=yes)
    assert [f["kind"] for f in check["findings"]] == ["LONG_SENTENCE"]
    assert not report.approved and any("long sentence" in i for i in report.issues)


def test_a_sentence_said_many_times_is_one_issue_but_fails_each_time() -> None:
    post = "LoRA freezes the weights.\n\n" + "It adds small low-rank matrices. " * 3
    report = style_report(f"{post}\n\nWould you pick LoRA?\n\n#LoRA", 5, **LORA)
    assert len(report["hard_issues"]) == 1 and report["score"] == 0.6  # 2 of 5 fail


# --- what the writer calls -------------------------------------------------------------------


def test_rejected_sentences_include_every_sentence_check() -> None:
    long = "LoRA freezes weights and " + " ".join(["adds"] * 30) + " matrices."
    text = (
        "LoRA freezes the pretrained weights. It helps doctors read medical scans. "
        f"{long} The Gpu memory drops by 3 times. In this work, we freeze weights. "
        "It adds no inference latency because LoRA freezes the pretrained weights. "
        "LoRA freezes the pretrained weights."
    )
    assert verdicts.rejected_sentences(text, **LORA) == {
        "It helps doctors read medical scans.",
        long,
        "The Gpu memory drops by 3 times.",
        "In this work, we freeze weights.",
        "It adds no inference latency because LoRA freezes the pretrained weights.",
    }  # a word-for-word copy is left to compose.dedupe_sentences: its first would go too
    assert verdicts.rejected_sentences("It adds no inference latency.", **LORA) == set()


def test_sentence_problems_give_the_reasons_for_one_sentence() -> None:
    problems = verdicts.sentence_problems
    assert problems("LoRA adds no inference latency.", **LORA) == []
    assert problems("It adds no inference latency.", **LORA, first=True)[0].startswith(
        "pronoun hook: "
    )
    assert problems("It adds no inference latency.", **LORA, first=False) == []
    earlier = ["LoRA adds no inference latency, which keeps serving fast."]
    assert problems("LoRA adds no inference latency at all.", **LORA, others=earlier) == [
        'repeated phrase: "lora adds no inference latency" appears again in '
        '"LoRA adds no inference latency at all."'
    ]
    found = problems("LoRA, a revolutionary idea, helps doctors read medical scans.", **LORA)
    assert [p.split(":")[0] for p in found] == ["overstated claim", "unsupported content"]


# --- sentences reported from real posts (regression cases, not used for tuning) -----------


def test_reported_sentences_are_caught() -> None:
    chinchilla = {
        "title": PAPERS["chinchilla"]["title"],
        "context": PAPERS["chinchilla"]["context"],
    }
    sentence = (
        "Chinchilla, which was designed specifically for this task due to its ability to "
        "handle large amounts of training tokens efficiently, runs on a CPU instead than a GPU."
    )
    assert any(
        p.startswith("unsupported content")
        for p in verdicts.sentence_problems(sentence, **chinchilla)
    )
    memory = (
        "FlashAttention demonstrates what is called 'in-memory computation' which isn't "
        "available anymore to the general public."
    )
    assert not supported(memory, FLASH)
    assert "'Gpu'" in mangled_terms("It cuts the (Gpu memory) requirement.", **LORA)[0]
    assert "'chain-of thought'" in mangled_terms("A chain-of thought prompt helps.", **COT)[0]
    assert author_voice_issues("In this paper, we explore low-rank adaptation.")
    assert author_voice_issues("LoRA freezes weights, demonstrating our ability to adapt models.")
    assert pronoun_hook("Their model achieves 10,000 times fewer trainable parameters.")
    assert pronoun_hook("It shows that low-rank matrices are enough.")
    clause = (
        "is an example where this technology has been applied in real world setting for "
        "large language model applications"
    )
    post = f"LoRA {clause}. GPT-3 {clause}. The matrices are small, which {clause}."
    assert len(prose.repetitions(post)) == 2
    question = (
        f'LoRA freezes weights.\n\nHow could the ideas in "{LORA["title"]}" change your own work?'
    )
    assert prose.stock_question(question, **LORA)


@pytest.mark.xfail(strict=True, reason="context words recombined: 7 of 10 content words match")
def test_a_claim_moved_to_another_subject_is_missed() -> None:
    """A reported sentence, "improve arithmetic and commonsense reasoning skills of human beings":
    only "skills", "human", "beings" are new, so the sentence scores 0.7 and passes. A
    lexical score cannot see a claim moved to another subject (MISREAD in the dev set)."""
    sentence = (
        "Chain-of-thought prompting can improve arithmetic and commonsense reasoning "
        "skills of human beings."
    )
    assert not supported(sentence, COT)


# --- a post that says nothing ----------------------------------------------------------------


def test_a_post_of_only_the_title_and_a_question_is_not_approved() -> None:
    """What an empty context (or a failed fetch for an arXiv id) leaves the writer."""
    title = "Attention Is All You Need"
    empty = (
        f'"{title}"\n\nHow would you test Attention Is All You Need?\n\n#Attention #Transformers'
    )
    report = verdicts.technical_report(empty, title=title, context="")
    assert not report["passed"]
    assert [f["kind"] for f in report["findings"]] == ["NOTHING_SAID"]
    assert report["issues"][0].startswith("nothing said: the post states nothing")
    said = f"{title}: the Transformer drops recurrence.\n\nHow would you test it?"
    context = "The Transformer drops recurrence."
    assert verdicts.technical_report(said, title=title, context=context)["passed"]


# --- reversals of the context ------------------------------------------------------------------


def test_a_sentence_that_turns_the_context_around_is_a_contradiction() -> None:
    """Held-out examples (not the dev set's MISREAD posts the check was written from)."""
    source = {
        "title": "Sparse Retrieval Heads",
        "context": (
            "The retriever needs no labelled queries. It lowers the index size by half "
            "and raises recall on BEIR."
        ),
    }
    for sentence, said in (
        ("The retriever needs labelled queries from annotators.", "needs labelled queries"),
        ("It doubles the index size on disk.", "doubles the index size"),
        ("It cuts recall on BEIR.", "cuts recall on BEIR"),
    ):
        issues = polarity.contradictions(sentence, **source)
        assert len(issues) == 1 and f"says '{said}'" in issues[0], (sentence, issues)
    for sentence in (
        "The retriever needs no labelled queries at all.",  # says the same
        "It halves the index size.",  # the same direction in other words
        "Labelled queries are what it does without.",  # no verb-object pair turned
        "Does it need labelled queries?",  # a question claims nothing
    ):
        found = verdicts.technical_findings(sentence, **source)
        assert all(f.kind != "CONTRADICTION" for f in found), (sentence, found)
    # "not only ... but also" adds; it denies nothing a later "only" could turn around
    added = {"title": "T", "context": "The retriever is not only faster but also smaller."}
    for sentence in ("The retriever is only slightly larger than BM25.", "It is not just faster."):
        assert polarity.contradictions(sentence, **added) == [], sentence
