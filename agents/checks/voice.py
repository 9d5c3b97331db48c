"""The reader's voice, three StyleChecker rules, deterministic: a post is shared by a
reader, not the authors (`author_voice_issues`: "we propose", "In this paper, we
explore", "our ability"), its hook states the paper's key idea, not a filler opener
(`filler_hook`), and it names its subject instead of opening with a pronoun that refers
to nothing before it (`pronoun_hook`: "Their model achieves ...").
"""

from __future__ import annotations

import re

from agents.checks.claims import plain
from agents.checks.sentences import is_hashtag_line, split_sentences

#: First-person phrases of the paper's authors (not of a reader sharing the paper).
AUTHOR_VOICE = re.compile(
    r"\b(?:we|we've|we're)\s+(?:are\s+|were\s+)?(?:pleased|excited|proud|happy|thrilled|"
    r"delighted|honou?red)\b"
    r"|\bwe\s+(?:(?:also|then|further|first|now|here|additionally|instead)\s+)?(?:propose|"
    r"present|introduce|release|developed|develop|designed|built|trained|show that|"
    r"demonstrate|evaluate|achieve|report|find that|found that|open-source|contribute|"
    r"explore|investigate|examine|study|studied|analy[sz]e|describe|discuss|focus|aim|seek|"
    r"argue|observe|obtain|compare|conduct|perform|provide|offer|extend|leverage|"
    r"empirically|theoretically)\w*"
    r"|\b(?:in|with|through)\s+this\s+(?:paper|work|study|article|report|preprint|"
    r"thesis|project|research),?\s+we\b"
    r"|\bhere,?\s+we\b"
    r"|\bour\s+(?:new\s+|latest\s+|recent\s+|proposed\s+|novel\s+|key\s+|main\s+|"
    r"empirical\s+|theoretical\s+)*(?:paper|work|team|model|method|"
    r"approach|results|research|lab|group|framework|system|experiments|findings|"
    r"contributions?|study|article|preprint|submission|proposed|co-?authors|ability|"
    r"abilities|capacity|analysis|evaluation|benchmark|dataset|code|implementation|"
    r"technique|algorithm|architecture|proposal|hypothesis|solution)\b"
    r"|\bmy\s+(?:co-?authors|team|paper|lab|group|collaborators)\b"
    r"|\bI\s*(?:am|'m)\s+\w+\s+to\s+(?:share|announce|present)\s+our\b",
    re.IGNORECASE,
)
#: Openers that delay the point: the hook must state the key idea or result instead.
FILLER_OPENERS = re.compile(
    r"^\W*(?:new paper(?: alert)?(?: worth your time)?|exciting news|big news|"
    r"(?:i'?m|i am|we'?re|we are)\s+(?:so\s+)?(?:excited|thrilled|happy|pleased|proud)\b|"
    r"check (?:out )?(?:this|the)\b|check this out|in today'?s post|have you ever wondered|"
    r"ever wondered|did you know|let'?s (?:talk|dive)|here'?s a (?:paper|must-read)|"
    r"must[- ]read|hot off the press|today (?:i|we) (?:want|will|look)|just read|"
    r"i (?:just )?(?:read|came across|stumbled)|a (?:great|cool|fascinating|interesting) "
    r"paper|(?:this|a) paper (?:is )?worth)",
    re.IGNORECASE,
)


def author_voice_issues(post: str) -> list[str]:
    """First-person author claims in `post` ("we propose", "our paper", "I'm excited to
    share our"): one issue per sentence, naming it. A reader's first person ("I found
    this paper interesting", "What do you think?") is fine. Rule: a reader shares the post,
    so it speaks of the authors in the third person.
    """
    issues = []
    for sentence in split_sentences(post):
        m = AUTHOR_VOICE.search(plain(sentence))
        if m and not is_hashtag_line(sentence):
            issues.append(
                f"author voice: '{sentence}' speaks as the paper's authors ('{m.group(0)}'); "
                "a reader shares this post, so write in the third person ('the authors ...')"
            )
    return issues


def filler_hook(hook: str) -> str | None:
    """An issue when `hook` (the first line, before LinkedIn's "see more" fold) opens with
    filler ("New paper worth your time", "Exciting news!", "Have you ever wondered")
    instead of the paper's key idea or result; None otherwise. Rule: the hook is all a
    reader sees before the fold, so it carries the point."""
    m = FILLER_OPENERS.search(plain(hook).strip())
    if not m:
        return None
    return (
        f"the hook opens with filler ('{m.group(0).strip()}'): '{hook.strip()}'; "
        "state the paper's key idea or result before the 'see more' fold"
    )


#: A hook that opens with one of these refers to something the reader has not seen:
#: the hook is the first thing of the post ("Their model achieves ...", "It shows ...").
_DANGLING_PRONOUN = re.compile(
    r"^\W*(it|its|they|their|theirs|them|he|she|his|her|these|those|this|that)\b(?!-)",
    re.IGNORECASE,
)
#: What may follow "this"/"that"/"these"/"those" in a hook: the paper being shared.
_SHARED_THING = re.compile(
    r"^\s+(?:new\s+|recent\s+|short\s+|one\s+)?(?:paper|preprint|work|study|article|"
    r"post|week|year|month)\b",
    re.IGNORECASE,
)
#: "It" with nothing to refer to, as English uses it: "It is rare to ...", "It turns out".
_DUMMY_IT = re.compile(
    r"^(?:\s+(?:turns out|seems|appears)\b|(?:\s+is|\s+was|'s)\s+(?:\w+\s+){1,2}"
    r"(?:to|that|how|when|why)\b)",
    re.IGNORECASE,
)


def pronoun_hook(hook: str) -> str | None:
    """An issue when the post's first sentence `hook` opens with a pronoun that refers
    to nothing before it ("Their model achieves ...", "It shows ...", "These results
    ..."), None otherwise. "This paper ..." (the paper being shared) and the dummy "it"
    ("It turns out ...", "It is rare to ...") are fine. Rule: the hook is read first,
    so it must name its subject."""
    text = plain(hook).strip()
    m = _DANGLING_PRONOUN.match(text)
    if not m:
        return None
    word, rest = m.group(1).lower(), text[m.end() :]
    if word in ("this", "that", "these", "those") and _SHARED_THING.match(rest):
        return None
    if word == "it" and _DUMMY_IT.match(rest):
        return None
    return (
        f"pronoun hook: '{hook.strip()}' opens with '{m.group(1)}', which refers to "
        "nothing before it; name the paper or its method first"
    )
