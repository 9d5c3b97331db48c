"""LinkedInCreator's writer: plan the post, then write it one checked sentence at a time.

A 135M-parameter model cannot be trusted to write a post freely: it repeats itself,
runs sentences on for a hundred words and says what the paper does not. So the writer
never asks it for prose:

1. **Plan** (the `plan_post` tool, `agents.teams.post_plan`): the hook's fact and 2-3 key
   points, each a sentence of the user's context, and the topic of the closing
   question.
2. **Write** (`write_sentence`): one short sentence per planned fact, as a structured
   output whose only field has a `maxLength` (`post_plan.SENTENCE_MAX_CHARS`):
   llama.cpp turns the JSON schema of the forced tool call into a grammar, so a
   run-on sentence cannot even be generated. Each sentence is checked at once (the
   `check_sentence` tool: the verifiers' own sentence checks, its length, repetition of
   what is written, and that it says nothing its fact does not); a rejected one is
   written again once, with the reason, then replaced by the planned fact itself in
   the reader's voice if that passes, else dropped. The draft is assembled only from
   sentences that passed.
3. **Ask** (`write_question`): a closing question on the paper's topic for the post's
   audience, checked the same way; one that fails becomes a template chosen by the
   paper (`post_plan.template_question`), so posts do not all end alike.

With an OpenAI-compatible model the same plan and checks apply; a larger model simply
paraphrases more freely, and the checks still decide.

While it writes, the draft is shown live (`Draft.live`, `agents.teams.live_draft`): each
sentence and the question stream in as the model generates them, a rejected try is
replaced by the next, and the assembled post replaces the whole at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agents.checks import compose
from agents.llm.streaming import OnText
from agents.teams import prompts, tools
from agents.teams.live_draft import LiveDraft, layout
from agents.teams.nodes import Reporter
from agents.teams.post_plan import (
    HOOK_MAX_CHARS,
    QUESTION_MAX_CHARS,
    SENTENCE_MAX_CHARS,
    template_question,
    tidy,
)
from db.models import PostRequest

#: Output-token cap of one sentence call (170 characters are ~45 tokens; the JSON
#: wrapping of the tool call adds ~15).
SENTENCE_MAX_TOKENS = 96


class WrittenSentence(BaseModel):
    """One sentence of the post."""

    sentence: str = Field(
        max_length=SENTENCE_MAX_CHARS,
        description="one short sentence, at most 25 words, in the third person",
    )


class WrittenQuestion(BaseModel):
    """The post's closing question."""

    question: str = Field(
        max_length=QUESTION_MAX_CHARS, description="one short question ending with '?'"
    )


@dataclass
class Draft:
    """The sentences written so far, and what happened to each planned fact (`log`: one
    `{"role", "fact", "sentence", "outcome", "problems"}` per fact; `outcome` is
    "written", "the fact itself", "template" or "dropped"), and where it is shown while
    it is written (`live`; None: nowhere)."""

    hook: str = ""
    body: list[str] = field(default_factory=list)
    question: str = ""
    log: list[dict[str, Any]] = field(default_factory=list)
    live: LiveDraft | None = None

    def streaming(self, role: str, field_name: str) -> tuple[str, OnText] | None:
        """The `on_text` of `Reporter.judge` for the sentence of `role` ("hook", "point"
        or "question") in `field_name`; None when nothing is shown."""
        if self.live is None or self.live.publisher is None:
            return None
        return field_name, self.live.writing(self.hook, self.body, self.question, role=role)

    async def show(self, role: str = "", sentence: str = "") -> None:
        """Show the draft as written so far, with `sentence` in the place of `role`
        when given (a sentence that passed, before the caller keeps it)."""
        if self.live is None:
            return
        hook, body, question = self.hook, list(self.body), self.question
        if role == "hook":
            hook = sentence
        elif role == "point":
            body.append(sentence)
        elif role == "question":
            question = sentence
        await self.live.show(layout(hook, body, question))

    def sentences(self) -> list[str]:
        """Every sentence written so far, in post order."""
        return [s for s in (self.hook, *self.body, self.question) if s]

    def record(self, role: str, fact: str, sentence: str, outcome: str, problems: list) -> None:
        """Note what became of a planned fact."""
        self.log.append(
            {
                "role": role,
                "fact": fact[:200],
                "sentence": sentence,
                "outcome": outcome,
                "problems": problems[:3],
            }
        )


async def plan(reporter: Reporter, request: PostRequest, insights: list, hashtags: list) -> dict:
    """The post's plan (`{"hook", "points", "topic"}`), through the `plan_post` tool."""
    return await reporter.tool(
        tools.plan_post,
        {
            "paper_title": request.paper_title,
            "additional_context": request.additional_context,
            "insights": list(insights),
            "hashtags": list(hashtags),
            "target_audience": request.target_audience,
        },
    )


async def _check(
    reporter: Reporter,
    request: PostRequest,
    sentence: str,
    draft: Draft,
    limit: int,
    *,
    hook: bool = False,
    ask: bool = False,
    fact: str = "",
) -> list[str]:
    result = await reporter.tool(
        tools.check_question if ask else tools.check_sentence,
        {
            "sentence": sentence,
            "paper_title": request.paper_title,
            "additional_context": request.additional_context,
            "written": draft.sentences(),
            "target_audience": request.target_audience,
            **({} if ask else {"limit": limit, "opens_post": hook, "fact": fact}),
        },
    )
    return list(result["problems"])


def _system(request: PostRequest) -> SystemMessage:
    technical = (
        prompts.TECHNICAL_DETAILS_ON
        if request.include_technical_details
        else prompts.TECHNICAL_DETAILS_OFF
    )
    return SystemMessage(
        prompts.SENTENCE_SYSTEM.format(
            audience=request.target_audience, tone=request.tone.lower(), technical=technical
        )
    )


async def write_sentence(
    reporter: Reporter,
    request: PostRequest,
    *,
    role: str,
    fact: str,
    draft: Draft,
    feedback: str,
) -> str:
    """One checked sentence for `fact` (`role`: "hook" or "point"), or "" when neither
    the model's two tries nor the fact itself pass the checks."""
    limit = HOOK_MAX_CHARS if role == "hook" else SENTENCE_MAX_CHARS
    task = prompts.HOOK_TASK if role == "hook" else prompts.POINT_TASK
    retry, problems = "", []
    for _attempt in range(2):
        user = prompts.SENTENCE_USER.format(
            title=request.paper_title,
            fact=fact,
            task=task.format(short=request.paper_title.split(":")[0].strip()),
            feedback=f"{feedback}\n" if feedback else "",
            retry=retry,
        )
        answer, _why = await reporter.judge(
            WrittenSentence,
            [_system(request), HumanMessage(user)],
            purpose=f"{role} sentence",
            max_tokens=SENTENCE_MAX_TOKENS,
            on_text=draft.streaming(role, "sentence"),
        )
        sentence = tidy(answer.sentence if answer is not None else "")
        problems = await _check(
            reporter, request, sentence, draft, limit, hook=role == "hook", fact=fact
        )
        if not problems:
            draft.record(role, fact, sentence, "written", [])
            await draft.show(role, sentence)
            return sentence
        retry = prompts.RETRY.format(sentence=sentence, reasons="; ".join(problems[:2]))
    fallback = tidy(compose.reader_voice(fact))
    if not await _check(reporter, request, fallback, draft, limit, hook=role == "hook", fact=fact):
        draft.record(role, fact, fallback, "the fact itself", problems)
        await draft.show(role, fallback)
        return fallback
    draft.record(role, fact, "", "dropped", problems)
    await draft.show()
    return ""


async def promote_hook(reporter: Reporter, request: PostRequest, draft: Draft) -> None:
    """With no hook written, the first body sentence that passes the hook's rules (it
    fits before the fold, opens with no filler or bare pronoun) becomes the hook; the
    post then opens with something said, not with the title."""
    if draft.hook:
        return
    for sentence in list(draft.body):
        others = Draft(body=[s for s in draft.body if s != sentence])
        if not await _check(reporter, request, sentence, others, HOOK_MAX_CHARS, hook=True):
            draft.body.remove(sentence)
            draft.hook = sentence
            return


async def write_question(
    reporter: Reporter, request: PostRequest, *, topic: str, draft: Draft
) -> str:
    """A checked closing question on `topic` for the request's audience, or a template
    chosen by the paper when the model's does not pass."""
    user = prompts.QUESTION_USER.format(
        title=request.paper_title, topic=topic, audience=request.target_audience
    )
    answer, _why = await reporter.judge(
        WrittenQuestion,
        [_system(request), HumanMessage(user)],
        purpose="closing question",
        max_tokens=SENTENCE_MAX_TOKENS,
        on_text=draft.streaming("question", "question"),
    )
    question = tidy(answer.question if answer is not None else "")
    problems = await _check(reporter, request, question, draft, QUESTION_MAX_CHARS, ask=True)
    if not problems:
        draft.record("question", topic, question, "written", [])
        await draft.show("question", question)
        return question
    fallback = template_question(request, topic)
    draft.record("question", topic, fallback, "template", problems)
    await draft.show("question", fallback)
    return fallback
