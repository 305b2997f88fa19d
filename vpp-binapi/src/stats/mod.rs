//! Reader for the VPP stats segment.
