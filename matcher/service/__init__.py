"""The matcher service around the engine: gRPC server, batching loop, persister, outbox relay, state loading."""
