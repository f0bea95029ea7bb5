"""The matcher: engine (pure Python), gRPC service, group commit, outbox relay."""
