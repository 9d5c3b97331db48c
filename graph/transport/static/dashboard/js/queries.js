// The GraphQL documents the dashboard sends (the public API; see schema.graphql).

const ROW = `id status paperTitle progress approved batchId queuePosition pauseRequested
  currentAgent createdAt usage { costUsd totalTokens }`;

export const TASKS = `query Tasks($status: TaskStatus, $batchId: ID) {
  tasks(first: 50, status: $status, batchId: $batchId, kind: GENERATE) {
    totalCount edges { node { ${ROW} } } } }`;

export const TASK_UPDATES = `subscription TaskUpdates { taskUpdates { ${ROW} } }`;

const USAGE = "usage { llmCalls inputTokens outputTokens totalTokens costUsd }";

export const TASK_FIELDS = `${ROW} kind additionalContext targetAudience tone review
  orchestrationMode includeTechnicalDetails maxHashtags revisions lastSeq parentId revisionOf
  attempt startedAt completedAt callbackUrl currentTeam
  teams { name displayName status progress ${USAGE}
    agents { name displayName status progress currentActivity error ${USAGE} } }
  result { content hashtags wordCount characterCount approved openIssues }
  verificationReports { agent kind score approved issues checks }
  error { code message } ${USAGE}`;

export const TASK = `query Task($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`;

const EVENT = "seq timestamp kind team agent message progress status attempt isTerminal data";

/** taskProgress with the live draft of the post, or without (a server that does not
 * have `includeDrafts` yet answers GRAPHQL_VALIDATION_FAILED naming it). */
export const progress = (drafts) => `subscription Progress($taskId: ID!, $afterSeq: Int!) {
  taskProgress(taskId: $taskId, afterSeq: $afterSeq${drafts ? ", includeDrafts: true" : ""}) {
    ${EVENT} } }`;

export const GENERATE = `mutation Generate($input: GeneratePostInput!, $key: String) {
  generatePost(input: $input, idempotencyKey: $key) { ${TASK_FIELDS} } }`;

export const GENERATE_BATCH = `mutation GenerateBatch($inputs: [GeneratePostInput!]!, $key: String) {
  generatePosts(inputs: $inputs, idempotencyKey: $key) { ${ROW} } }`;

const control = (name) => `mutation($id: ID!) { ${name}(id: $id) { ${TASK_FIELDS} } }`;
export const CANCEL = control("cancelTask");
export const RETRY = control("retryTask");
export const PAUSE = control("pauseTask");
export const RESUME = control("resumeTask");

export const REVIEW = `mutation Review($id: ID!, $decision: ReviewDecision!, $content: String,
    $feedback: String, $revision: Int) {
  reviewTask(id: $id, decision: $decision, content: $content, feedback: $feedback,
             expectedRevision: $revision) { ${TASK_FIELDS} } }`;

export const REVISE_POST = `mutation Revise($id: ID!, $feedback: String!) {
  revisePost(taskId: $id, feedback: $feedback) { ${TASK_FIELDS} } }`;
