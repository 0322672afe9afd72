"""`campaigns watch ID`: a campaign's live progress in the terminal, a client of the API.

It subscribes to `campaignProgress` over the GraphQL WebSocket (graphql-transport-ws) and
redraws one line per update: status, a bar of processed/total, the counts, the current
send rate and an ETA. Off a terminal it prints one plain line per update instead, at
most two a second. It ends when the campaign is terminal and its numbers have not
changed for `--settle` seconds (receipts keep arriving after COMPLETED), with a summary.

Exit status: 0 done; 1 bad key, unknown campaign, or no connection; 130 on Ctrl-C.
A connection that drops mid-watch is reopened with backoff: a new subscription starts
with a fresh snapshot, so nothing is missed.

Modules: `snapshot` one progress event; `render` its text (pure); `display` decides
when to draw; `client` the graphql-transport-ws client (the tests use it too);
`watcher` the subscription and its reconnections; `app` the command, `main(args)`.
Imports nothing of the service: only the API's wire format.
"""
