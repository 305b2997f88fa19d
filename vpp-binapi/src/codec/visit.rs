//! Visiting every generated message type: [`MessageVisitor`] and the bounds it may rely on.

use super::Message;

/// A message type as seen by a [`MessageVisitor`]: a [`Message`] that, when the crate features
/// are enabled, also implements `arbitrary::Arbitrary` (feature `arbitrary`) and
/// `serde::Serialize` + `serde::de::DeserializeOwned` (feature `serde`).
///
/// Every generated message implements it; it is implemented automatically.
pub trait VisitedMessage: Message + MaybeArbitrary + MaybeSerde {}

impl<M: Message + MaybeArbitrary + MaybeSerde> VisitedMessage for M {}

/// `arbitrary::Arbitrary` when the `arbitrary` feature is enabled, nothing otherwise.
#[cfg(feature = "arbitrary")]
pub trait MaybeArbitrary: for<'a> arbitrary::Arbitrary<'a> {}
#[cfg(feature = "arbitrary")]
impl<T: for<'a> arbitrary::Arbitrary<'a>> MaybeArbitrary for T {}
/// `arbitrary::Arbitrary` when the `arbitrary` feature is enabled, nothing otherwise.
#[cfg(not(feature = "arbitrary"))]
pub trait MaybeArbitrary {}
#[cfg(not(feature = "arbitrary"))]
impl<T> MaybeArbitrary for T {}

/// `serde::Serialize + serde::de::DeserializeOwned` when the `serde` feature is enabled, nothing
/// otherwise.
#[cfg(feature = "serde")]
pub trait MaybeSerde: serde::Serialize + serde::de::DeserializeOwned {}
#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> MaybeSerde for T {}
/// `serde::Serialize + serde::de::DeserializeOwned` when the `serde` feature is enabled, nothing
/// otherwise.
#[cfg(not(feature = "serde"))]
pub trait MaybeSerde {}
#[cfg(not(feature = "serde"))]
impl<T> MaybeSerde for T {}

/// Called once per generated message type by `api::visit_messages` (and the fixture
/// registry's equivalent), so that one test or fuzz target can cover every message.
pub trait MessageVisitor {
    /// Visits the message type `M`.
    fn visit<M: VisitedMessage>(&mut self);
}
