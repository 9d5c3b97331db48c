"""LangChain tools of the teams; each wraps a pure function of `checks` or `compose`."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import tool

from agents.checks import numbers_in, style_check, technical_check
from agents.compose import compose_post, extract_key_sentences, hashtags_for


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
def suggest_hashtags(paper_title: str, text: str, max_hashtags: int) -> list[str]:
    """Suggest hashtags (without '#') for a LinkedIn post about a paper.

    Args:
        paper_title: the paper's title.
        text: research notes or draft text to take topic keywords from.
        max_hashtags: the most hashtags to return (1..20).
    """
    return hashtags_for(paper_title, text, max_hashtags)


@tool
def format_linkedin_post(
    paper_title: str,
    body: str,
    takeaways: list[str],
    question: str,
    hashtags: list[str],
) -> str:
    """Assemble the final LinkedIn post: hook, body, key takeaways, question, hashtags,
    within 3000 characters and with the hook before the ~210-character fold.

    Args:
        paper_title: the paper's title (for a hook when the body has none that fits).
        body: the drafted text.
        takeaways: 2-4 short, factual takeaways.
        question: one question that invites comments.
        hashtags: hashtags without '#'.
    """
    return compose_post(
        title=paper_title, body=body, takeaways=takeaways, question=question, hashtags=hashtags
    )


@tool
def check_technical_accuracy(post: str, source_text: str) -> dict[str, Any]:
    """Check a post's technical claims against the user's title and context.

    Args:
        post: the full post text.
        source_text: the title and context the user gave; the post must agree with them.

    Returns unsupported numbers, overstated-claim words, issues, a score 0..1 and
    whether the check passed.
    """
    return technical_check(post, source_text)


@tool
def check_linkedin_style(post: str, max_hashtags: int) -> dict[str, Any]:
    """Check a post against LinkedIn's limits: 3000 characters, at most `max_hashtags`
    hashtags, a hook that ends before the ~210-character "see more" fold, a question.

    Args:
        post: the full post text.
        max_hashtags: the most hashtags the user allows (1..20).
    """
    return style_check(post, max_hashtags)
