"""Hashtags from the key phrases of a paper's title and context.

Key phrases come from YAKE (`yake`, an unsupervised, statistical keyphrase extractor; it
ships its stopword lists and needs no download or network at run time). Each phrase
becomes one CamelCase hashtag (`ResidualLearning`, `ImageRecognition`) when it passes
these rules:

- A multi-word phrase is kept when it is in the title or occurs at least twice in title
  and context: YAKE also proposes chance word pairs of one sentence ("LoRA freezes").
  A phrase with a function word ("Adaptation of Large") or a possessive is a fragment.
- The paper's short name (the title, or its part before ':') of two or three words is
  the first candidate: YAKE never ends a phrase on a stopword ("Segment Anything").
- A single word is kept only when it is a name as written in the source (an acronym,
  CamelCase or letters-and-digits word: `LoRA`, `BERT`, `GPT3`, `ImageNet`) or a field
  name of `SINGLE_WORD_TOPICS` (`Transformers`); any other single word ("Learning",
  "Deep", "Image", "Model") is too generic to follow.
- No duplicates: phrases are compared lower case and singular ("Transformer" =
  "Transformers"), and a phrase whose words are all in an earlier tag ("LanguageModels"
  after "LargeLanguageModels") is a near duplicate.
- Tags are letters and digits only (LinkedIn hashtags), start with a letter, at most
  `MAX_TAG_CHARS` characters. The order is YAKE's score, ties broken alphabetically, so
  the same input always gives the same tags. The caller caps the count at
  `min(max_hashtags, agents.checks.rules.RECOMMENDED_MAX_HASHTAGS)`.

`suggest_hashtags` (what the `suggest_hashtags` tool returns) fills the room the key
phrases leave with `topic_hashtags`: the tags people follow for the topics the text
names, then #MachineLearning.
"""

from __future__ import annotations

import re

import yake

#: Single words that are followed topics on their own (lower case, singular).
SINGLE_WORD_TOPICS = frozenset(
    "transformer quantization robotics multimodal interpretability distillation "
    "bioinformatics cybersecurity".split()
)
#: Acronyms that name hardware or jargon, not a topic people follow.
NOT_TOPICS = frozenset("gpu cpu tpu gb api pdf sota url".split())
#: Function words that make a phrase a fragment ("Learning for Image").
_FUNCTION_WORDS = frozenset(
    "a an the of for and or to in on with by from at as is are was were via into vs than "
    "that this its their our we it be can".split()
)
#: Longest hashtag, in characters: longer CamelCase tags are unreadable.
MAX_TAG_CHARS = 30
#: Key phrases asked of YAKE: enough to fill the tags after filtering.
_CANDIDATES = 80

#: Topic keywords -> the hashtag people follow for them (`topic_hashtags`).
_TOPIC_HASHTAGS = (
    ("transformer", "Transformers"),
    ("attention", "AttentionMechanism"),
    ("language model", "LLM"),
    ("llm", "LLM"),
    ("diffusion", "DiffusionModels"),
    ("reinforcement", "ReinforcementLearning"),
    ("vision", "ComputerVision"),
    ("image", "ComputerVision"),
    ("graph neural", "GraphNeuralNetworks"),
    ("translation", "MachineTranslation"),
    ("speech", "SpeechRecognition"),
    ("retrieval", "RAG"),
    ("generative", "GenerativeAI"),
    ("neural", "NeuralNetworks"),
    ("nlp", "NLP"),
    ("natural language", "NLP"),
)


def _singular(word: str) -> str:
    w = word.lower()
    return w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w


def _is_name(word: str) -> bool:
    """An acronym, CamelCase or letters-and-digits word: "LoRA", "BERT", "GPT-3"."""
    letters = re.sub(r"[^A-Za-z0-9]", "", word)
    capitals = sum(c.isupper() for c in letters.rstrip("s"))
    has_digit = any(c.isdigit() for c in letters)
    return capitals >= 2 or has_digit or bool(re.search(r"[a-z][A-Z]", letters))


def _camel(phrase: str) -> str:
    """ "low-rank adaptation" -> "LowRankAdaptation"; names keep their case ("GPT-3" ->
    "GPT3", "LoRA" -> "LoRA")."""
    parts = []
    for word in phrase.split():
        if _is_name(word):
            parts.append(re.sub(r"[^A-Za-z0-9]", "", word))
        else:
            parts.extend(p.capitalize() for p in re.findall(r"[A-Za-z0-9]+", word))
    return "".join(parts)


def _keep(phrase: str, title: str, text: str) -> bool:
    """The rules of the module docstring for one YAKE phrase."""
    words = phrase.split()
    if any(re.fullmatch(r"[\d.,%]+\w?", w) or w.lower() in _FUNCTION_WORDS for w in words):
        return False  # a number is not a topic; "Adaptation of Large" is a fragment
    if "'" in phrase:
        return False  # "Meta AI's Segment": a possessive ends a phrase
    if len(words) == 1:
        if _singular(phrase) in NOT_TOPICS:
            return False
        return _is_name(phrase) or _singular(phrase) in SINGLE_WORD_TOPICS
    if re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", title.lower()):
        return True
    occurrences = len(re.findall(rf"(?<!\w){re.escape(phrase.lower())}", text.lower()))
    return occurrences >= 2


def hashtags_for(title: str, context: str, max_hashtags: int) -> list[str]:
    """Up to `max_hashtags` hashtags (without '#') for a post about paper `title`, from
    the key phrases of `title` and `context`, best first. Deterministic for the same
    input; `[]` when nothing passes the rules (e.g. an empty title and context)."""
    text = f"{title.strip()}.\n{context.strip()}".strip(".\n ")
    if max_hashtags <= 0 or not text:
        return []
    extractor = yake.KeywordExtractor(lan="en", n=3, dedup_lim=0.9, top=_CANDIDATES)
    ranked = sorted(extractor.extract_keywords(text), key=lambda pair: (pair[1], pair[0]))
    short_name = title.split(":")[0].strip()
    if 1 < len(short_name.split()) <= 3:
        ranked.insert(0, (short_name, 0.0))  # "Segment Anything": stopwords YAKE cuts
    tags: list[str] = []
    taken: list[set[str]] = []
    for phrase, _score in ranked:
        if not _keep(phrase, title, text):
            continue
        tag = _camel(phrase)
        words = {_singular(w) for w in re.findall(r"[A-Za-z0-9]+", phrase)}
        if not tag or not tag[0].isalpha() or len(tag) > MAX_TAG_CHARS:
            continue
        if any(words <= earlier or earlier <= words for earlier in taken):
            continue
        tags.append(tag)
        taken.append(words)
        if len(tags) == max_hashtags:
            break
    return tags


def topic_hashtags(text: str) -> list[str]:
    """The hashtags people follow for the topics `text` mentions (`_TOPIC_HASHTAGS`),
    then #MachineLearning: a fallback when key phrases give too few tags."""
    haystack = text.lower()
    tags = [tag for key, tag in _TOPIC_HASHTAGS if key in haystack] + ["MachineLearning"]
    return list(dict.fromkeys(tags))


def suggest_hashtags(title: str, context: str, max_hashtags: int) -> list[str]:
    """Up to `max_hashtags` hashtags (without '#') for a post about paper `title`: the
    key-phrase tags of `hashtags_for`, then `topic_hashtags` of `title` and `context`
    while there is room (a tag already there, in any case, is not added twice)."""
    tags = hashtags_for(title, context, max_hashtags)
    for tag in topic_hashtags(f"{title}\n{context}"):
        if len(tags) >= max_hashtags:
            break
        if tag.lower() not in {t.lower() for t in tags}:
            tags.append(tag)
    return tags
