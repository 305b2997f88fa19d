//! Replies that carry a `retval`, and how a non-zero one reads: [`Reply`] and the `Display` of
//! [`ApiError`].

use std::fmt;

use super::Message;
pub use crate::api::ApiError;

/// A message with a `retval` field (implemented by the generator for every such message).
///
/// VPP answers 0 for success and a negative error code otherwise; [`Reply::check`] turns the
/// code into an [`ApiError`], so that a call site writes `reply.check()?`.
///
/// ```
/// use vpp_binapi::api::lb::LbAddDelVipV2Reply;
/// use vpp_binapi::codec::{ApiError, Reply};
///
/// assert_eq!(LbAddDelVipV2Reply { retval: 0 }.check(), Ok(()));
/// let err = LbAddDelVipV2Reply { retval: -6 }.check().unwrap_err();
/// assert_eq!(err, ApiError::NoSuchEntry);
/// assert_eq!(err.to_string(), "VNET_API_ERROR_NO_SUCH_ENTRY (-6): no such entry");
/// ```
pub trait Reply: Message {
    /// The raw `retval`.
    fn retval(&self) -> i32;

    /// `Ok` for a `retval` of 0, else the error it stands for.
    ///
    /// A cursor reply ([`CursorGet`](super::CursorGet)) answers
    /// [`ApiError::Eagain`] to mean "call again with the returned cursor"; that is
    /// reported as an error here like any other non-zero value.
    fn check(&self) -> Result<(), ApiError> {
        ApiError::from_retval(self.retval()).map_or(Ok(()), Err)
    }
}

/// `VNET_API_ERROR_NO_SUCH_ENTRY (-6): no such entry`: the C name, the value, and VPP's
/// message starting in lower case (unless it starts with an acronym, as in `IP6 ...`);
/// `unknown VPP API error (-1234)` for a value the table does not name.
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(name), Some(message)) = (self.name(), self.message()) else {
            return write!(f, "unknown VPP API error ({})", self.retval());
        };
        write!(f, "{name} ({}): ", self.retval())?;
        let mut chars = message.chars();
        let first = chars.next();
        let second = chars.next();
        match (first, second) {
            (Some(a), Some(b)) if !b.is_uppercase() => {
                write!(f, "{}{b}{}", a.to_lowercase(), chars.as_str())
            }
            _ => f.write_str(message),
        }
    }
}

impl std::error::Error for ApiError {}
