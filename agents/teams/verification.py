"""The Verification team's work: TechVerifier and StyleChecker, one `_verify` for both.

Each runs its deterministic check as a tool, asks the model for a judgement, and
combines the two in a report (`build_report`): the model may lower the score or
withhold approval, never override a failed check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from agents.checks.wording import counted
from agents.teams import prompts, tools
from agents.teams.content import source_text
from agents.teams.nodes import AgentOutput, Reporter
from agents.teams.state import (
    STYLE_CHECKER,
    TECH_VERIFIER,
    PostState,
    draft_of,
    reports_of,
    request_of,
)
from db.events import TaskResult
from db.models import PostRequest
from db.outputs import VerificationReport

#: A report is approved only with a score above this (0..1): a middling 0.5, the score
#: a model gives when it has no opinion, is not an approval.
APPROVAL_SCORE = 0.5
#: Model issues kept per report, and their length in characters.
MAX_MODEL_ISSUES, MAX_ISSUE_CHARS = 5, 200


class Judgement(BaseModel):
    """A verifier model's judgement of a post."""

    score: float = Field(description="quality from 0 (bad) to 1 (excellent)")
    approved: bool = Field(description="true when the post can be published as it is")
    issues: list[str] = Field(default_factory=list, description="short problems, at most 5")


@dataclass(frozen=True)
class Verifier:
    """What sets one verifier apart: its report `kind`, its check tool and the tool's
    arguments besides the post, title and context (`limits`), and its prompt's fields
    besides `post` and `findings`."""

    kind: Literal["TECHNICAL", "STYLE"]
    check: BaseTool
    limits: Callable[[PostRequest], dict[str, Any]]
    prompt: str
    prompt_fields: Callable[[PostRequest], dict[str, str]]

    def check_args(self, request: PostRequest, post: str) -> dict[str, Any]:
        """The arguments of the check tool on `post` for `request`."""
        return {
            "post": post,
            **self.limits(request),
            "paper_title": request.paper_title,
            "additional_context": request.additional_context,
        }


VERIFIERS: dict[str, Verifier] = {
    TECH_VERIFIER: Verifier(
        kind="TECHNICAL",
        check=tools.check_technical_accuracy,
        limits=lambda request: {},
        prompt=prompts.TECH_VERIFIER,
        prompt_fields=lambda request: {"source": source_text(request)},
    ),
    STYLE_CHECKER: Verifier(
        kind="STYLE",
        check=tools.check_linkedin_style,
        limits=lambda request: {"max_hashtags": request.max_hashtags},
        prompt=prompts.STYLE_CHECKER,
        prompt_fields=lambda request: {
            "audience": request.target_audience,
            "tone": request.tone.lower(),
        },
    ),
}


async def verify(reporter: Reporter, state: PostState) -> AgentOutput:
    """Run the verifier `reporter.agent` on the current draft; replace its earlier report.
    Returns the `reports` state update and all reports to store on the task."""
    verifier, request = VERIFIERS[reporter.agent], request_of(state)
    draft = draft_of(state)
    post = draft.content if draft else ""
    check = await reporter.tool(verifier.check, verifier.check_args(request, post))
    findings = "; ".join(check["issues"]) or "no problems"
    system = verifier.prompt.format(post=post, findings=findings, **verifier.prompt_fields(request))
    judgement, why = await reporter.judge(
        Judgement,
        [SystemMessage(system), HumanMessage("Give your judgement.")],
        purpose=f"{verifier.kind.lower()} judgement",
    )
    report = build_report(
        agent=reporter.agent,
        kind=verifier.kind,
        check=check,
        judgement=judgement,
        judgement_error=why,
    )
    others = [r for r in reports_of(state) if r.agent != reporter.agent]
    reports = [*others, report]
    verdict = "approved" if report.approved else "not approved"
    summary = f"{verdict} (score {report.score:.2f}, {counted(len(report.issues), 'issue')})"
    update = {"reports": [r.model_dump(mode="json") for r in reports]}
    return AgentOutput(update, summary, TaskResult(verification_reports=reports))


def build_report(
    *,
    agent: str,
    kind: Literal["TECHNICAL", "STYLE"],
    check: dict[str, Any],
    judgement: Judgement | None,
    judgement_error: str | None = None,
) -> VerificationReport:
    """Combine a deterministic check with the model's judgement into a report.

    The check always counts: `approved` needs it to pass. The model's judgement counts
    when it is concrete: an approval with a score above `APPROVAL_SCORE`, or a
    rejection that names at least one issue (its issues are added, the score is the
    lower of the two). A judgement that is neither (a bare "no", an "approved" with a
    failing or middling score: what a small model gives when it has no opinion) is
    recorded in `model_judgement_error` and the check decides alone. Approval always
    needs a score above `APPROVAL_SCORE`; a rejected report always names an issue.
    `check` is a check tool's result (`issues`, `score`, `passed` and its findings,
    which become the report's `checks`).
    """
    issues = list(check["issues"])
    score = float(check["score"])
    approved = bool(check["passed"])
    used = judgement is not None and _concrete(judgement)
    if judgement is not None and used:
        score = min(score, _clamp(judgement.score))
        approved = approved and bool(judgement.approved)
        issues += [i for i in _model_issues(judgement) if i not in issues]
    elif judgement is not None:
        judgement_error = (
            f"judgement ignored: approved={judgement.approved} with score "
            f"{_clamp(judgement.score):.2f} and no issue named; the checks decide"
        )
    approved = approved and score > APPROVAL_SCORE
    if not approved and not issues:  # the checks passed with a low soft score
        issues.append(f"score {score:.2f}; approval needs more than {APPROVAL_SCORE}")
    return VerificationReport(
        agent=agent,
        kind=kind,
        score=round(score, 3),
        approved=approved,
        issues=issues,
        checks={k: v for k, v in check.items() if k not in ("issues", "score", "passed")},
        model_judgement=used,
        model_judgement_error=judgement_error,
    )


def _clamp(score: float) -> float:
    return min(1.0, max(0.0, float(score)))


def _model_issues(judgement: Judgement) -> list[str]:
    issues = [str(i).strip()[:MAX_ISSUE_CHARS] for i in judgement.issues[:MAX_MODEL_ISSUES]]
    return [i for i in issues if i]


def _concrete(judgement: Judgement) -> bool:
    """A judgement that says something: an approval above the threshold, or a
    rejection with a named issue."""
    if judgement.approved:
        return _clamp(judgement.score) > APPROVAL_SCORE
    return bool(_model_issues(judgement))
