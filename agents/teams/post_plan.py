"""The plan of a post and the checks of one sentence, as pure functions (the writer in
`agents.teams.writer` runs them as tools, so each step is in the event log).

- `plan_post`: the hook's fact and 2-3 key points, each a sentence of the user's context
  (the researcher's key sentences lead its insights), and `topic_of` the closing
  question.
- `sentence_problems`: why a sentence the model wrote may not go into the post;
  `question_problems`: why its closing question may not end it.
- `template_question`: a closing question for when the model's does not pass, chosen
  by the paper so posts do not all end alike.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from agents.checks import compose, rules, support, verdicts
from agents.checks.sentences import split_sentences
from db.models import PostRequest

#: The longest sentence the model may write, in characters: about 25 words of ~6.5
#: characters with their space, LinkedIn's guidance for a readable sentence (and the
#: StyleChecker's limit). The JSON schema's `maxLength` makes the grammar stop there.
SENTENCE_MAX_CHARS = 170
#: The hook must end before LinkedIn's ~210-character "see more" fold.
HOOK_MAX_CHARS = min(SENTENCE_MAX_CHARS, rules.SEE_MORE_FOLD - 10)
#: The closing question, in characters.
QUESTION_MAX_CHARS = 140
#: Key points after the hook: LinkedIn readers skim; two or three carry a post.
MAX_POINTS = 3
#: The longest context sentence a plan takes as a fact, in characters.
MAX_FACT_CHARS = 300
#: The fewest words (runs of letters) a sentence of the post has: a shorter one says
#: nothing a reader can use ("RLAIF.", "{2} {1}.", what the 135M model writes when lost).
MIN_WORDS = 5
#: Characters no sentence of a post needs: template braces, markup, pipes.
_STRAY = re.compile(r"[{}<>\[\]|\\]")


@dataclass(frozen=True)
class PostPlan:
    """What the post will say: `hook` (the key fact), `points` (2-3 more facts), each a
    sentence of the context, and `topic`, the subject of the closing question."""

    hook: str
    points: list[str]
    topic: str


def plan_post(request: PostRequest, insights: Sequence[str], topic: str) -> PostPlan:
    """The plan of a post on `request`: the hook's fact is the first usable insight that
    names the paper's subject (a distinctive title word: a hook must say what the post is
    about), else the first usable one; the next `MAX_POINTS` are the body's (an insight
    is usable when it is a statement of at most `MAX_FACT_CHARS`); `topic` names the
    question's subject."""
    facts = [i.strip() for i in insights if i.strip() and not i.strip().endswith("?")]
    facts = list(dict.fromkeys(f for f in facts if len(f) <= MAX_FACT_CHARS))
    subject = compose.subject_words(request.paper_title)
    named = [f for f in facts if subject & set(re.findall(r"[a-z][a-z0-9-]*", f.lower()))]
    hook = (named or facts or [request.paper_title])[0]
    points = [f for f in facts if f != hook][:MAX_POINTS]
    return PostPlan(hook=hook, points=points, topic=topic)


#: Words of a size, not a subject: "Would you try billion parameters ...?" asks nothing.
_QUANTITY = frozenset("hundred thousand million billion trillion parameters tokens".split())


def topic_of(title: str, hashtags: Sequence[str]) -> str:
    """What the closing question asks about: the paper's short name when it is a name of
    at most three words ("BERT", "LoRA", "Segment Anything"), else the first hashtag
    phrase of several words that stands in the title, one that ends it first ("large
    language models"), else the first hashtag, in words, that shares a distinctive word
    with the title ("AttentionMechanism" -> "attention mechanism"), else the first
    hashtag, else "these ideas". A hashtag of sizes ("BillionParameters", `_QUANTITY`)
    is never the topic."""
    short = title.split(":")[0].strip()
    if short and len(short.split()) <= 3:
        return short
    subject = compose.subject_words(title)
    phrases = []
    for tag in hashtags:
        words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", tag)
        if words and not _QUANTITY.intersection(w.lower() for w in words):
            phrases.append(" ".join(w if w.isupper() else w.lower() for w in words))
    in_title = [p for p in phrases if len(p.split()) > 1 and p.lower() in title.lower()]
    # a title's head noun phrase usually ends it ("... Reasoning in Large Language Models")
    in_title.sort(key=lambda p: not title.lower().rstrip(" .").endswith(p.lower()))
    about_title = [p for p in phrases if subject & set(p.lower().split())]
    return (in_title or about_title or phrases or ["these ideas"])[0]


def sentence_problems(
    sentence: str,
    request: PostRequest,
    *,
    written: Sequence[str] = (),
    limit: int,
    first: bool = False,
    fact: str = "",
) -> list[str]:
    """Why `sentence` may not go into the post (empty: it may): a sentence over `limit`
    characters, a hashtag or line break in it, with a `fact` (the context sentence it
    was written for) content that fact and the title do not support (`beyond_fact`),
    and every issue a verifier would raise on it (`verdicts.sentence_problems`:
    claims, support, overstated words, the authors' voice, length, mangled terms,
    repetition of the sentences already `written`, and with `first` the hook's rules),
    each naming the reason."""
    text = sentence.strip()
    if not text:
        return ["the sentence is empty"]
    problems: list[str] = []
    if len(text) > limit:
        problems.append(f"it is {len(text)} characters; at most {limit}")
    if "#" in text or "\n" in text:
        problems.append("a sentence of the post has no hashtags or line breaks")
    if _STRAY.search(text):
        problems.append(f"it has stray symbols ({''.join(sorted(set(_STRAY.findall(text))))})")
    if len(split_sentences(text)) > 1:
        problems.append("it is more than one sentence")
    if len(re.findall(r"[^\W\d_]+", text)) < MIN_WORDS:  # letters of any script
        problems.append(f"it is too short to say anything (under {MIN_WORDS} words)")
    elif _only_the_title(text, request.paper_title):
        problems.append("it only repeats the paper's title")
    if fact and (beyond := beyond_fact(text, fact, request.paper_title)) is not None:
        problems.append(beyond)
    problems += verdicts.sentence_problems(
        text,
        title=request.paper_title,
        context=request.additional_context,
        others=written,
        first=first,
    )
    return problems


def beyond_fact(sentence: str, fact: str, title: str) -> str | None:
    """Why `sentence` says more than the one `fact` it was written for, or None: its
    support (`agents.checks.support`, same threshold) against the fact and the title alone,
    and no phrase of two or more content words the fact lacks (`support.new_phrases`).

    A sentence the whole context supports can still weld words of distant sentences
    into a claim none of them makes, and a small model garbles even one fact: a
    FlashAttention hook one wrote, "a multiplicative enhancement in sequence length detection
    over the MLPerf benchmark", scores 0.77 against its fact, but names a
    "multiplicative enhancement" the fact never does. Stricter than the verifiers:
    a sentence rejected here is replaced by the fact itself, which reads as well."""
    found = support.sentence_support(sentence, title=title, context=fact)
    if not found.supported:
        missing = ", ".join(f"'{w}'" for w in dict.fromkeys(found.missing))
        return f"it says what its fact does not: {missing} are not in the fact"
    if phrases := support.new_phrases(sentence, title=title, context=fact):
        named = ", ".join(f"'{p}'" for p in phrases)
        return f"it names what its fact does not: {named} is not in the fact"
    return None


def _only_the_title(sentence: str, title: str) -> bool:
    """True when every content word of `sentence` is a word of the title: it tells the
    reader nothing the title did not ("Your Language Model is Secretly a Reward Model.")."""
    words = [w.lower() for w in support.content_words(sentence)]
    title_words = {w.lower() for w in support.content_words(title)}
    return bool(words) and all(w in title_words for w in words)


#: Words a closing question may use beyond the paper's own (and the audience's): how a
#: question asks a reader about their work. Anything else it brings in is the model's
#: invention ("... to improve the legal system?", "... with their mental health?").
QUESTION_WORDS = frozenset(
    "would could will does what which where when who whom whose have your yours their "
    "them they this that these those with from into onto about like more most much many "
    "some other first next best biggest difference change changes changed help helps "
    "work works working team teams project projects problem problems product products "
    "data dataset datasets task tasks build building built try trying tried test testing "
    "adopt adopting apply applying applied make makes making take takes need needs idea "
    "ideas result results think plan planning start starting field today stack setup "
    "approach approaches method methods model models system systems tool tools".split()
)


def question_problems(question: str, request: PostRequest, *, written: Sequence[str]) -> list:
    """Why a closing question may not end the post: one question ending with '?', within
    the sentence checks, using only the words of the title, the context, the audience
    and `QUESTION_WORDS` (a word counts with its variants: "adopting" for "adopt")."""
    problems = [] if question.endswith("?") else ["a question ends with '?'"]
    if question.count("?") > 1:
        problems.append("it asks more than one question")
    problems += sentence_problems(question, request, written=written, limit=QUESTION_MAX_CHARS)
    # the paper's index is the one every sentence check of this post uses (cached); the
    # audience gets a small one of its own instead of a second copy of the context's
    paper = support.support_index(request.paper_title, request.additional_context)
    audience = support.support_index(request.target_audience, "")
    foreign = [
        w
        for w in dict.fromkeys(re.findall(r"[A-Za-z][A-Za-z-]{3,}", question))
        if w.lower() not in QUESTION_WORDS and not paper.has(w) and not audience.has(w)
    ]
    if foreign:
        problems.append(f"it brings in words the paper does not use: {', '.join(foreign[:4])}")
    return problems


#: Closing questions for when the model's does not pass; one is picked by the paper
#: (a hash of its title), so the posts of different papers end differently.
QUESTION_TEMPLATES = (
    "Where would {topic} make the biggest difference in your work?",
    "Would you try {topic} on a problem you are working on now?",
    "What would it take for your team to adopt {topic}?",
    "Which of these results about {topic} surprised you most?",
    "How would you test {topic} on your own data?",
    "What is the first thing you would build with {topic}?",
)


def template_question(request: PostRequest, topic: str) -> str:
    """A closing question on `topic` from `QUESTION_TEMPLATES`, the same for the same
    paper and different across papers."""
    digest = hashlib.sha256(request.paper_title.encode()).digest()
    template = QUESTION_TEMPLATES[digest[0] % len(QUESTION_TEMPLATES)]
    return template.format(topic=topic.strip().rstrip(".") or "these ideas")


def tidy(sentence: str) -> str:
    """One line, single spaces, no surrounding quotes or bullets, ending with a stop
    (or the question mark it has)."""
    text = re.sub(r"\s+", " ", sentence).strip().strip("\"'“”").lstrip("-•* ").strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text
