"""The deterministic checks and the post composer."""

from __future__ import annotations

from agents import checks, compose


def test_numbers_are_normalised_and_small_counts_ignored() -> None:
    text = "We saw 28.4 BLEU, 1,000 steps, 5 % gains, 3 takeaways and 2014 data."
    assert checks.numbers_in(text) == {"28.4", "1000", "5%", "2014"}


def test_technical_check_flags_unsupported_numbers_and_hype() -> None:
    source = "It reaches 28.4 BLEU on WMT 2014."
    good = checks.technical_check("It reaches 28.4 BLEU on WMT 2014.", source)
    assert good["passed"] and good["score"] == 1.0
    bad = checks.technical_check("A revolutionary model with 99% accuracy and 28.4 BLEU.", source)
    assert bad["unsupported_numbers"] == ["99%"]
    assert bad["overstated_claims"] == ["revolutionary"]
    assert not bad["passed"] and bad["score"] == 0.5


def test_style_check_hard_limits() -> None:
    ok = checks.style_check("A short hook.\n\nBody. What do you think?\n\n#AI #ML", 5)
    assert ok["passed"] and ok["hook_before_fold"] and ok["issues"] == []
    long_hook = checks.style_check("x" * 211 + "\n\nWhy? #AI", 5)
    assert not long_hook["passed"] and not long_hook["hook_before_fold"]
    too_long = checks.style_check("Hook.\n\n" + "y" * 3000, 5)
    assert any("3000" in i for i in too_long["hard_issues"])
    tags = checks.style_check("Hook?\n\n#a #b #c", 2)
    assert tags["hard_issues"] == ["3 hashtags; at most 2 allowed"]


def test_compose_post_stays_within_the_limits_whatever_the_body() -> None:
    body = ("This sentence repeats itself forever. " * 200) + "#spam #tags"
    post = compose.compose_post(
        title="A Paper Title",
        body=body,
        takeaways=["One.", "Two."],
        question="What do you think?",
        hashtags=["AI", "ML"],
    )
    check = checks.style_check(post, 2)
    assert check["passed"], check
    assert post.count("This sentence repeats itself forever.") == 1
    assert post.endswith("#AI #ML") and "#spam" not in post
    assert checks.hook_of(post) == "This sentence repeats itself forever."


def test_compose_post_makes_a_hook_when_the_body_has_none_that_fits() -> None:
    post = compose.compose_post(
        title="Attention Is All You Need",
        body="z" * 400,
        takeaways=[],
        question="Why?",
        hashtags=[],
    )
    assert checks.hook_of(post) == 'New paper worth your time: "Attention Is All You Need"'


def test_hashtags_are_topical_unique_and_capped() -> None:
    tags = compose.hashtags_for("Attention Is All You Need", "transformer translation", 4)
    assert tags == ["Transformers", "AttentionMechanism", "MachineTranslation", "Attention"]
    assert len(compose.hashtags_for("Some Paper", "", 20)) == len(
        {t.lower() for t in compose.hashtags_for("Some Paper", "", 20)}
    )


def test_strip_claims_and_trailing_fragments() -> None:
    text = "Good claim with 28.4 BLEU. Bad claim with 99.9 points. A revolutionary idea. Kept."
    assert compose.strip_claims(text, numbers=["99.9"], words=["revolutionary"]) == (
        "Good claim with 28.4 BLEU. Kept."
    )
    assert compose.drop_trailing_fragment("Done. The Transformer is a") == "Done."
