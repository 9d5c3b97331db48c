"""The deterministic checks and the post composer."""

from __future__ import annotations

from agents.checks import compose, hashtags, rules, style, verdicts


def test_numbers_are_normalised_and_small_counts_ignored() -> None:
    text = "We saw 28.4 BLEU, 1,000 steps, 5 % gains, 3 takeaways and 2014 data."
    assert rules.numbers_in(text) == {"28.4", "1000", "5%", "2014"}


def test_technical_report_quotes_each_unsupported_sentence_with_its_reason() -> None:
    context = "It reaches 28.4 BLEU on WMT 2014 English-to-German."
    good = verdicts.technical_report(
        "It reaches 28.4 BLEU on WMT 2014.", title="Attention Is All You Need", context=context
    )
    assert good["passed"] and good["score"] == 1.0 and good["issues"] == []
    post = "A revolutionary model with 99% accuracy. It reaches 28.4 BLEU on WMT 2014."
    bad = verdicts.technical_report(post, title="Attention Is All You Need", context=context)
    assert [c["sentence"] for c in bad["unsupported_claims"]] == [
        "A revolutionary model with 99% accuracy."
    ]
    assert "99%" in bad["unsupported_claims"][0]["reason"]
    assert bad["overstated_claims"] == ["revolutionary"]
    assert not bad["passed"] and bad["score"] == 0.5


def test_style_report_adds_reader_voice_and_filler_hooks_as_hard_issues() -> None:
    post = "Exciting news!\n\nWe propose a new model. What do you think?\n\n#AI"
    report = style.style_report(post, 5)
    assert not report["passed"]
    assert report["filler_hook"] and "Exciting news" in report["filler_hook"]
    assert len(report["author_voice"]) == 1 and "We propose" in report["author_voice"][0]
    clean = style.style_report("LoRA cuts trainable parameters.\n\nWhy?\n\n#AI", 5)
    assert clean["passed"] and clean["hard_issues"] == []


def test_style_check_hard_limits() -> None:
    ok = rules.style_check("A short hook.\n\nBody. What do you think?\n\n#AI #ML", 5)
    assert ok["passed"] and ok["hook_before_fold"] and ok["issues"] == []
    long_hook = rules.style_check("x" * 211 + "\n\nWhy? #AI", 5)
    assert not long_hook["passed"] and not long_hook["hook_before_fold"]
    too_long = rules.style_check("Hook.\n\n" + "y" * 3000, 5)
    assert any("3000" in i for i in too_long["hard_issues"])
    tags = rules.style_check("Hook?\n\n#a #b #c", 2)
    assert tags["hard_issues"] == ["3 hashtags; at most 2 allowed"]


def test_compose_post_stays_within_the_limits_whatever_the_body() -> None:
    body = ("This sentence repeats itself forever. " * 200) + "#spam #tags"
    post = compose.compose_post(
        paper_title="Forever: A Sentence That Repeats",
        key_point="A Paper Title",
        body=body,
        takeaways=["One.", "Two."],
        question="What do you think?",
        hashtags=["AI", "ML"],
    )
    check = rules.style_check(post, 2)
    assert check["passed"], check
    assert post.count("This sentence repeats itself forever.") == 1
    assert post.endswith("#AI #ML") and "#spam" not in post
    assert rules.hook_of(post) == "This sentence repeats itself forever."


def test_compose_post_makes_a_hook_from_the_key_point_when_the_body_has_none() -> None:
    key_point = "The authors cut trainable parameters by 10,000 times."
    for body in (
        "z" * 400,  # past the fold
        "Exciting news! LoRA is small.",  # a filler opener
        "In a world where data is the currency, memory matters.",  # not about the paper
    ):
        post = compose.compose_post(
            paper_title="LoRA: Low-Rank Adaptation of Large Language Models",
            key_point=key_point,
            body=body,
            takeaways=[key_point, "Quality is on par with full fine-tuning."],
            question="Why?",
            hashtags=[],
        )
        assert rules.hook_of(post) == f"LoRA: {key_point}"
        assert post.count(key_point) == 1  # the hook is not repeated as a takeaway
    grounded = compose.compose_post(
        paper_title="LoRA: Low-Rank Adaptation of Large Language Models",
        key_point=key_point,
        body="LoRA freezes the pretrained weights. It adds small matrices.",
        takeaways=[],
        question="Why?",
        hashtags=[],
    )
    assert rules.hook_of(grounded) == "LoRA freezes the pretrained weights."


def test_topic_hashtags_and_reader_voice() -> None:
    assert hashtags.topic_hashtags("A transformer for translation") == [
        "Transformers",
        "MachineTranslation",
        "MachineLearning",
    ]
    assert compose.reader_voice("We propose our model; it beats us.") == (
        "The authors propose their model; it beats them."
    )


def test_trailing_fragments_are_dropped() -> None:
    assert compose.drop_trailing_fragment("Done. The Transformer is a") == "Done."
