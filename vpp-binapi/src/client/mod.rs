//! Async client for the VPP API socket.
