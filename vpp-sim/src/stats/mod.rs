//! The simulated stats segment and its socket.
