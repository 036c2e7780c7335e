"""Read-model queries: one module per resource, shared by the JSON API, the workspace and the Excel renderer."""
