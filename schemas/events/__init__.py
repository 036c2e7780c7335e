"""Public, versioned schemas of the events LeadLedger publishes (Kafka, the HTTP feed).

They are a contract with downstream services, kept apart from the domain event classes:
a model here names exactly the fields that leave LeadLedger, as they look on the wire.
``registry`` lists every published event type and version, ``compat`` tells a breaking
change from a compatible one, ``export`` writes and checks the committed JSON Schemas
(``schemas/published``) and ``asyncapi`` describes the Kafka channels.
"""
