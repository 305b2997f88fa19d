//! An optional hook that observes every message the client sends or receives.

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// Written to VPP.
    Send,
    /// Read from VPP.
    Recv,
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Sent, or received and handed to its caller or subscriber.
    Ok,
    /// A request whose reply did not arrive within the timeout (direction `Send`).
    Timeout,
    /// Received, but nobody waits for it (late reply after a timeout, event without subscriber,
    /// event dropped because its subscriber is full).
    Unmatched,
    /// Received with a message id that is not in the message table.
    UnknownId,
    /// Received, but too short for its header, or not the message the caller expected.
    Malformed,
}

/// One observed message.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MessageEvent<'a> {
    /// The message's `name_crc` as in VPP's table (or the bare name for typed sends), or
    /// `"unknown"`.
    pub name: &'a str,
    /// Which way it went.
    pub direction: Direction,
    /// What became of it.
    pub outcome: Outcome,
}

/// Receives a [`MessageEvent`] for every message; plug a metrics registry in here.
///
/// Called on the client's hot path (from the reader task and from callers), so keep it cheap and
/// non-blocking. Closures `Fn(&MessageEvent)` implement it.
pub trait ClientMetrics: Send + Sync + 'static {
    /// Records one message.
    fn record(&self, event: &MessageEvent<'_>);
}

impl<F> ClientMetrics for F
where
    F: Fn(&MessageEvent<'_>) + Send + Sync + 'static,
{
    fn record(&self, event: &MessageEvent<'_>) {
        self(event)
    }
}
