"""The contract: HTTP request/response models, separate from the domain events."""
