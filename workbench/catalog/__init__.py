"""The catalog: rules, channels, incidents, deliveries, runs and silences in SQL (SQLModel)."""
