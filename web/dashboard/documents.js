// The GraphQL documents the dashboard sends, as constants: queries, mutations (one per
// campaign action) and the two subscriptions.

const STATS = "stats { total pending sent delivered read replied failed cancelled progress deliveryRate readRate failureRate }";
const ROW_FIELDS = `id name status createdAt ${STATS}`;
const DELIVERY = `timeZone sendWindow { days start end timeZone description } localSendTime { date time decidedAt }
  waiting { reason timeZone count until } sendPlan { at count }`;
/** A recurring schedule as the Recurring card shows it: its next 5 times and latest 5 occurrences. */
const SCHEDULE = `id cron timeZone status allowedActions runs maxRuns startsAt endsAt nextRunAt lastRunAt lastError
  nextOccurrences(count: 5) occurrences(first: 5) { id name status createdAt }`;
const RECURRING = `recurringSchedule { ${SCHEDULE} } occurrenceOf { id campaign { id name } }`;
const CAMPAIGN_FIELDS = `id name body status statusReason nextSendAt allowedActions scheduledAt createdAt startedAt completedAt
  ${STATS} ${DELIVERY} ${RECURRING} events { from to action actor reason at } report { billable { category count } }`;
const PAYLOAD = `campaign { ${CAMPAIGN_FIELDS} } userErrors { field message code }`;

export const VIEWER = "query Viewer { viewer { name } }";

export const CAMPAIGNS = `query Campaigns($first: Int, $after: String) {
  campaigns(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { ${ROW_FIELDS} } }
  }
}`;

export const ROW = `query Row($id: ID!) { campaign(id: $id) { ${ROW_FIELDS} } }`;

export const CAMPAIGN = `query Campaign($id: ID!) { campaign(id: $id) { ${CAMPAIGN_FIELDS} } }`;

export const TIMELINE = `query Timeline($id: ID!, $bucket: Int) {
  campaign(id: $id) { report { timeline(bucketSeconds: $bucket) { at sent failed } } }
}`;

export const CREATE = `mutation Create($input: CreateCampaignInput!) { result: createCampaign(input: $input) { ${PAYLOAD} } }`;

export const TEMPLATES = `query Templates {
  templates(status: "APPROVED") { id name language category parameterFormat parameters body senderId }
}`;

export const DELETE = "mutation Delete($id: ID!) { result: deleteCampaign(id: $id) { deletedId userErrors { field message code } } }";

/** Live numbers of one campaign; `sendRate` is the server's messages per second. */
export const PROGRESS = `subscription Progress($id: ID!) {
  campaignProgress(id: $id) { campaignId status sendRate at ${STATS} }
}`;

export const STATUS_CHANGES = "subscription StatusChanges { campaignStatusChanges { campaignId name from to reason at } }";

const ID_ARG = ["$id: ID!", "id: $id"];
const AT_ARGS = ["$id: ID!, $scheduledAt: DateTime!", "id: $id, scheduledAt: $scheduledAt"];
const INPUT_ARG = (type) => [`$input: ${type}!`, "input: $input"];
const mutation = (field, [declared, args] = ID_ARG) => `mutation(${declared}) { result: ${field}(${args}) { ${PAYLOAD} } }`;

/** The mutation of each CampaignAction that has one (DELETE and ADD_RECIPIENTS do not: see DELETE, api.uploadCsv). */
export const ACTION_MUTATIONS = Object.freeze({
  SEND_NOW: mutation("sendCampaignNow"),
  SCHEDULE: mutation("scheduleCampaign", AT_ARGS),
  RESCHEDULE: mutation("rescheduleCampaign", AT_ARGS),
  UNSCHEDULE: mutation("unscheduleCampaign"),
  PAUSE: mutation("pauseCampaign"),
  RESUME: mutation("resumeCampaign"),
  CANCEL: mutation("cancelCampaign"),
  RETRY_FAILED: mutation("retryFailedMessages"),
  RETRY: mutation("retryCampaign"),
  DUPLICATE: mutation("duplicateCampaign"),
  EDIT: mutation("updateCampaign", INPUT_ARG("UpdateCampaignInput")),
  REMOVE_RECIPIENTS: mutation("removeRecipients", INPUT_ARG("RemoveRecipientsInput")),
});

const SCHEDULE_PAYLOAD = `recurringSchedule { ${SCHEDULE} } userErrors { field message code }`;

export const PAUSE_SCHEDULE = `mutation PauseSchedule($id: ID!) { result: pauseRecurringSchedule(id: $id) { ${SCHEDULE_PAYLOAD} } }`;
export const RESUME_SCHEDULE = `mutation ResumeSchedule($id: ID!) { result: resumeRecurringSchedule(id: $id) { ${SCHEDULE_PAYLOAD} } }`;
export const END_SCHEDULE = `mutation EndSchedule($id: ID!) { result: endRecurringSchedule(id: $id) { ${SCHEDULE_PAYLOAD} } }`;

/** The mutation of each RecurringScheduleAction (its button: lifecycle.js's SCHEDULE_ACTIONS). */
export const SCHEDULE_MUTATIONS = Object.freeze({ PAUSE: PAUSE_SCHEDULE, RESUME: RESUME_SCHEDULE, END: END_SCHEDULE });
