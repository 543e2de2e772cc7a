"""Ready-made listeners: structured output parsed as it streams, and OpenTelemetry tracing."""
