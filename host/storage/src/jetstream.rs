//! The cluster store: NATS JetStream.
