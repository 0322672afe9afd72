"""The GraphQL layer: thin. Types, queries, mutations and subscriptions in their own
modules; resolvers call services and turn domain errors into `userErrors`."""
