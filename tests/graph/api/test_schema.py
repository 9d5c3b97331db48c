"""The committed schema.graphql is the SDL of the running schema."""

from __future__ import annotations

from pathlib import Path

from graph.api.schema import build_schema

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "schema.graphql"


def test_committed_sdl_matches_the_schema() -> None:
    sdl = build_schema().as_str() + "\n"
    assert SCHEMA_FILE.read_text() == sdl, (
        "schema.graphql drifted: run `postassist export-schema -o schema.graphql`"
    )


def test_schema_has_the_documented_surface() -> None:
    sdl = SCHEMA_FILE.read_text()
    for line in (
        "task(id: ID!): Task",
        "tasks(first: Int! = 20, after: String = null, status: TaskStatus = null, "
        "approved: Boolean = null, kind: TaskKind = null, batchId: ID = null): TaskConnection!",
        "generatePost(input: GeneratePostInput!, idempotencyKey: String = null): Task!",
        "generatePosts(inputs: [GeneratePostInput!]!, idempotencyKey: String = null): [Task!]!",
        "batchProgress(batchId: ID!): Task!",
        "verifyPost(input: VerifyPostInput!): [VerificationReport!]!",
        "cancelTask(id: ID!): Task!",
        "retryTask(id: ID!): Task!",
        "queuePosition: Int",
        "taskProgress(taskId: ID!, afterSeq: Int! = 0, includeDrafts: Boolean! = false): "
        "TaskEvent!",
        "taskUpdates(status: TaskStatus = null): Task!",
    ):
        assert line in sdl, line
