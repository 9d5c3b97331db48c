"""The writer's plan and the checks of one sentence (agents/teams/post_plan.py): what the 135M
model writes when it is lost never reaches a post."""

from __future__ import annotations

import pytest

from agents.teams.post_plan import (
    QUESTION_TEMPLATES,
    SENTENCE_MAX_CHARS,
    plan_post,
    question_problems,
    sentence_problems,
    template_question,
    topic_of,
)
from db.models import PostRequest

DPO = PostRequest(
    paper_title="Direct Preference Optimization: Your Language Model is Secretly a Reward Model",
    additional_context=(
        "DPO fine-tunes a language model directly on human preference pairs with a simple "
        "classification loss, without fitting a separate reward model or running "
        "reinforcement learning. It matches or exceeds PPO-based RLHF on sentiment control "
        "and summarization."
    ),
)


def problems(sentence: str, request: PostRequest = DPO) -> list[str]:
    return sentence_problems(sentence, request, limit=SENTENCE_MAX_CHARS)


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("LoRA: {2} {1}.", "stray symbols"),
        ("DINOv2: {{}}.", "stray symbols"),
        ("RLAIF.", "too short"),
        ("Your Language Model is Secretly a Reward Model.", "only repeats the paper's title"),
    ],
)
def test_what_a_lost_small_model_writes_is_rejected(sentence: str, reason: str) -> None:
    assert any(reason in p for p in problems(sentence)), problems(sentence)


def test_a_paraphrase_of_the_context_passes() -> None:
    assert problems("DPO trains a language model on human preference pairs directly.") == []


def test_a_sentence_may_say_only_what_its_fact_says() -> None:
    """The whole context supports this welding of its two sentences (issue 19's
    FlashAttention hook was one); the fact it was written for does not."""
    welded = "DPO matches RLHF on summarization with reinforcement learning and classification."
    assert problems(welded) == []
    fact = "It matches or exceeds PPO-based RLHF on sentiment control and summarization."
    found = sentence_problems(welded, DPO, limit=SENTENCE_MAX_CHARS, fact=fact)
    assert found == [
        "it says what its fact does not: 'reinforcement', 'learning', 'classification' are "
        "not in the fact"
    ]
    own_words = "DPO equals or beats PPO-based RLHF on summarization and sentiment control."
    assert sentence_problems(own_words, DPO, limit=SENTENCE_MAX_CHARS, fact=fact) == []


def test_a_question_the_context_does_not_support_is_rejected() -> None:
    invented = "How would you use DPO to help people with their mental health?"
    assert any("does not use: people, mental, health" in p for p in question_problems(
        invented, DPO, written=[]
    ))  # fmt: skip
    assert question_problems("Would you fine-tune your model on preference pairs?", DPO,
                             written=[]) == []  # fmt: skip
    assert "a question ends with '?'" in question_problems("Try DPO now.", DPO, written=[])


def test_the_hook_names_the_paper_and_the_points_follow() -> None:
    insights = [
        "It matches or exceeds PPO-based RLHF on sentiment control and summarization.",
        "DPO fine-tunes a language model directly on human preference pairs.",
        "Is this a question?",
    ]
    plan = plan_post(DPO, insights, "DPO")
    assert plan.hook.startswith("DPO fine-tunes")  # names the subject; 'It ...' does not
    assert plan.points == [insights[0]]  # the question is no fact


def test_topics_and_template_questions_vary_with_the_paper() -> None:
    assert topic_of("LoRA: Low-Rank Adaptation of Large Language Models", []) == "LoRA"
    cot = "Chain-of-Thought Prompting Elicits Reasoning in Large Language Models"
    tags = ["PromptingElicitsReasoning", "LargeLanguageModels"]
    assert topic_of(cot, tags) == "large language models"
    vit = "Scaling Vision Transformers to 22 Billion Parameters"
    vit_tags = ["BillionParameters", "ScalingVisionTransformers", "ViT"]
    assert topic_of(vit, vit_tags) == "scaling vision transformers"  # a size is no topic
    titles = [f"Paper number {n} about attention" for n in range(30)]
    asked = {
        template_question(PostRequest(paper_title=t, additional_context=""), "x") for t in titles
    }
    assert len(asked) == len(QUESTION_TEMPLATES)  # all templates in use, not one for all
    assert template_question(DPO, "DPO") == template_question(DPO, "DPO")  # stable per paper


@pytest.mark.parametrize(
    "question",
    [
        "How would you use DPO to improve the legal system?",
        "What would you use DPO for? How does it improve your business?",
    ],
)
def test_a_question_that_wanders_off_the_paper_is_rejected(question: str) -> None:
    assert question_problems(question, DPO, written=[])


TOOLFORMER = PostRequest(
    paper_title="Toolformer: Language Models Can Teach Themselves to Use Tools",
    additional_context=(
        "Toolformer is a language model trained to decide which APIs to call, when to call "
        "them and what arguments to pass. It needs only a handful of demonstrations for "
        "each API."
    ),
)


def test_one_sentence_with_the_papers_names_as_the_paper_writes_them() -> None:
    lowered = "toolformer decides which APIs to call and when to call them."
    assert any("mangled term: 'toolformer'" in p and "writes 'Toolformer'" in p
               for p in problems(lowered, TOOLFORMER))  # fmt: skip
    two = "Toolformer decides which APIs to call. It needs a handful of demonstrations."
    assert "it is more than one sentence" in problems(two, TOOLFORMER)
    fine = "Toolformer decides which APIs to call, when to call them and what to pass."
    assert problems(fine, TOOLFORMER) == []
    assert problems("language models decide which APIs to call.", TOOLFORMER) == []


def test_the_tools_check_against_the_posts_audience_and_any_fetched_title() -> None:
    from agents.teams import tools

    args = {
        "paper_title": DPO.paper_title,
        "additional_context": DPO.additional_context,
        "written": [],
        "target_audience": "clinicians",
    }
    question = "Would clinicians fine-tune a model on preference pairs?"
    assert tools.check_question.invoke({**args, "sentence": question})["passed"]
    short = {**args, "paper_title": "Ego", "limit": SENTENCE_MAX_CHARS}  # arXiv's, unchecked
    assert "passed" in tools.check_sentence.invoke({**short, "sentence": "Ego learns fast."})


def test_words_of_any_script_count() -> None:
    zh = PostRequest(
        paper_title="注意力就是你所需要的一切", additional_context="注意力 机制 取代 循环 网络 结构"
    )
    assert not any("too short" in p for p in problems("注意力 机制 取代 循环 网络 结构。", zh))


@pytest.mark.anyio
@pytest.mark.parametrize("technical", [True, False])
async def test_the_writer_follows_include_technical_details(technical: bool) -> None:
    """`includeTechnicalDetails` reaches every sentence the model is asked to write."""
    from agents.teams import prompts
    from agents.teams.hierarchy import RECURSION_LIMIT, build_graph
    from agents.teams.nodes import RunContext
    from agents.teams.state import initial_state
    from tests.fakes import scripted, system_text

    request = DPO.model_copy(update={"include_technical_details": technical})
    model = scripted()
    await build_graph().ainvoke(
        initial_state(request, max_revisions=0),
        {"recursion_limit": RECURSION_LIMIT},
        context=RunContext(model=model),
    )
    off = prompts.TECHNICAL_DETAILS_OFF.strip()
    writes = [system_text(c["messages"]) for c in model.calls if "WrittenSentence" in c["tools"]]
    assert writes and all((off in prompt) is not technical for prompt in writes)


def test_a_sentence_may_not_name_what_its_fact_does_not() -> None:
    """Issue 19's FlashAttention hook: 10 of its 13 content words are in its fact."""
    title = "FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness"
    fact = (
        "It gives a 15% end-to-end wall-clock speedup on BERT-large (sequence length 512) "
        "over the MLPerf 1.1 training speed record, a 3x speedup on GPT-2 (sequence length 1K)."
    )
    request = PostRequest(paper_title=title, additional_context=fact)
    garbled = (
        "FlashAttention: The 15% end-to-end wall clock speedup on BERT and GPT2, a "
        "multiplicative enhancement in sequence length detection over the MLPerf benchmark."
    )
    assert sentence_problems(garbled, request, limit=200, fact=fact) == [
        "it names what its fact does not: 'multiplicative enhancement' is not in the fact"
    ]
    plain = "FlashAttention trains BERT-large 15% faster than the MLPerf 1.1 record."
    assert sentence_problems(plain, request, limit=200, fact=fact) == []
