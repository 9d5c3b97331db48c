"""LangChain tools of the teams; each wraps a pure function of `checks`, `compose`,
`hashtags` or `post_checks`."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import tool

from agents import compose, hashtags, post_checks
from agents.checks import numbers_in
from agents.compose import extract_key_sentences


@tool
def collect_paper_sources(paper_title: str, additional_context: str = "") -> dict[str, Any]:
    """Gather what is known about a paper from the request itself.

    Args:
        paper_title: the paper's title as the user gave it.
        additional_context: abstract, notes or results the user pasted (may be empty).

    Returns {"sources": [{"kind", "title", "characters"}], "metrics": [...],
    "key_sentences": [...], "note": str}. No external search is configured, and the
    note says so, instead of inventing sources.
    """
    sources = [{"kind": "request", "title": paper_title, "characters": len(additional_context)}]
    return {
        "sources": sources,
        "metrics": sorted(numbers_in(additional_context)),
        "key_sentences": extract_key_sentences(additional_context, limit=5),
        "note": (
            "No external source (arXiv, Tavily) is configured: these notes rest only on the "
            "title and the context given with the request."
        ),
    }


@tool
def suggest_hashtags(paper_title: str, additional_context: str, max_hashtags: int) -> list[str]:
    """Suggest hashtags (without '#') for a LinkedIn post about a paper: CamelCase key
    phrases of the title and context (yake), topic tags when those are too few.

    Args:
        paper_title: the paper's title.
        additional_context: the context the user gave (not model-written notes).
        max_hashtags: the most hashtags to return (1..20).
    """
    tags = hashtags.hashtags_for(paper_title, additional_context, max_hashtags)
    for tag in compose.topic_hashtags(f"{paper_title}\n{additional_context}"):
        if len(tags) >= max_hashtags:
            break
        if tag.lower() not in {t.lower() for t in tags}:
            tags.append(tag)
    return tags


@tool
def ground_draft(text: str, paper_title: str, additional_context: str) -> dict[str, Any]:
    """Drop the sentences of a draft that a verifier would reject outright: claims the
    title and context do not support, overstated words, the authors' voice.

    Args:
        text: the drafted body.
        paper_title: the paper's title.
        additional_context: the context the user gave.

    Returns {"text": the draft without them, "dropped": [the sentences dropped]}.
    """
    bad = post_checks.rejected_sentences(text, title=paper_title, context=additional_context)
    return {"text": compose.drop_sentences(text, bad), "dropped": sorted(bad)}


@tool
def format_linkedin_post(
    paper_title: str,
    key_point: str,
    body: str,
    takeaways: list[str],
    question: str,
    hashtags: list[str],
) -> str:
    """Assemble the final LinkedIn post: hook, body, key takeaways, question, hashtags,
    within 3000 characters and with the hook before the ~210-character fold.

    Args:
        paper_title: the paper's title (a hook must name its subject).
        key_point: the paper's key idea or result, the hook when the body has none.
        body: the drafted text.
        takeaways: 2-4 short, factual takeaways.
        question: one question that invites comments.
        hashtags: hashtags without '#'.
    """
    return compose.compose_post(
        title=paper_title,
        key_point=key_point,
        body=body,
        takeaways=takeaways,
        question=question,
        hashtags=hashtags,
    )


@tool
def check_technical_accuracy(post: str, paper_title: str, additional_context: str) -> dict:
    """Check a post's claims, sentence by sentence, against the user's title and context:
    numbers with units, dates, named entities, attribution, comparisons; and hype words.

    Args:
        post: the full post text.
        paper_title: the paper's title.
        additional_context: the context the user gave; the post must agree with it.

    Returns the unsupported sentences with reasons, issues, a score 0..1 and whether
    the check passed.
    """
    return post_checks.technical_report(post, title=paper_title, context=additional_context)


@tool
def check_linkedin_style(
    post: str, max_hashtags: int, paper_title: str = "", additional_context: str = ""
) -> dict[str, Any]:
    """Check a post against LinkedIn's limits (3000 characters, at most `max_hashtags`
    hashtags, a hook before the ~210-character "see more" fold), the reader's voice, a
    hook that states the key idea (no filler, no pronoun with nothing before it), and how
    it reads: sentences of at most 25 words, no repeated sentence or phrase, terms
    spelled as the title and context spell them; and a question about this paper.

    Args:
        post: the full post text.
        max_hashtags: the most hashtags the user allows (1..20).
        paper_title: the paper's title (a quoted title counts as one word and is never
            a repeated phrase).
        additional_context: the context the user gave (its terms' spelling).
    """
    return post_checks.style_report(
        post, max_hashtags, title=paper_title, context=additional_context
    )
