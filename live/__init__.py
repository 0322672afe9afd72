"""Live numbers, in one package: the events (built once each), the publisher that turns
database reads into events on Redis, the hub that holds each API process's ONE Redis
subscription and fans it out to latest-wins slots, the subscription loop that survives
outages, and eager task starts for the fan-out's writes. Workers and the receipt
applier publish through it; the GraphQL layer subscribes through it (docs/DESIGN.md,
"Live updates")."""
