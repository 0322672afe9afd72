"""HTTP edges besides GraphQL: auth, CSV import/export, health, metrics, logs."""
