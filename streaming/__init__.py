"""The websocket feed: Channels consumers and the Kafka to channel-layer relay."""
