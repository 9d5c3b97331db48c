"""`LiveDraft`: the post as LinkedInCreator's subscribers see it while it is written.

The writer shows the draft in the layout of the post (`agents.checks.compose`): the
hook, a blank line, the body's sentences separated by spaces, a blank line, the
question. While a sentence is generated its text so far is shown in its place; when the
checks reject it the next try is shown instead, and when the post is assembled (the
takeaways, the link and the hashtags added, the question moved after them) the shown
text becomes the post itself. `show(target)` sends only what `target` adds to what was
shown, or, when it changes what was shown, all of `target` with `replace` (the first
text of a draft always replaces), through `db.drafts.DraftPublisher`: so the chunks of
a draft since its last `replace`, joined, are the shown text, and after `finish(post)`
the stored post.
"""

from __future__ import annotations

from agents.llm.streaming import OnText
from db.drafts import DraftPublisher

#: Stands for the sentence being written when the layout is computed.
_PENDING = "\x00"


def layout(hook: str, body: list[str], question: str) -> str:
    """The draft as shown: hook, body (sentences joined by spaces), question, separated
    by blank lines, leaving out the empty parts."""
    return "\n\n".join(part for part in (hook, " ".join(s for s in body if s), question) if part)


class LiveDraft:
    """The shown text of draft number `draft` (0 for the first, +1 per revision) of one
    task, published through `publisher` (None: nothing is shown, every call is free)."""

    def __init__(self, publisher: DraftPublisher | None, draft: int = 0) -> None:
        self.publisher, self.draft = publisher, draft
        self.shown: str | None = None

    async def show(self, target: str) -> None:
        """Make the shown text `target` (see the module)."""
        if self.publisher is None or target == self.shown:
            return
        shown = self.shown
        self.shown = target
        if shown is not None and target.startswith(shown):
            await self.publisher.write(target[len(shown) :], draft=self.draft)
        else:
            await self.publisher.write(target, draft=self.draft, replace=True)

    def writing(self, hook: str, body: list[str], question: str, *, role: str) -> OnText:
        """The `on_text` of a model call writing the sentence of `role` ("hook", "point"
        or "question") into the draft of `hook`, `body` and `question`: each text so far
        is shown in its place."""
        parts = {
            "hook": (_PENDING, body, question),
            "point": (hook, [*body, _PENDING], question),
            "question": (hook, body, _PENDING),
        }[role]
        before = layout(*parts).split(_PENDING)[0]

        async def on_text(text: str) -> None:
            await self.show(before + text.lstrip())

        return on_text

    async def finish(self, post: str) -> None:
        """Show the assembled `post` and publish what waits."""
        await self.show(post)
        if self.publisher is not None:
            await self.publisher.flush()


__all__ = ["LiveDraft", "layout"]
