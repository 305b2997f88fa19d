//! The wire codec runtime shared by every generated message.
