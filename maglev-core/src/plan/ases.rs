//! [`AsMap`]: a VIP's application servers by address, as one sorted vector.
//!
//! A desired state holds a million ASes at 10,000 VIPs × 100 backends. As ordered-tree maps they
//! cost about ten node allocations per VIP to build and as many to free, more than the whole
//! rest of the desired-state build; as a sorted vector a VIP's ASes are one allocation, and the
//! plan's merge walk reads them in order from contiguous memory. The map operations keep the
//! vector sorted by address with no two entries for one address.

use std::fmt;
use std::iter::FusedIterator;
use std::net::IpAddr;
use std::ops::Index;

use super::As;

/// A VIP's ASes by address, in numeric address order (IPv4 before IPv6, `IpAddr`'s own order):
/// a sorted vector with the operations of an ordered map.
///
/// Lookups are binary searches; an insertion past the last address is a push, any other
/// insertion or removal moves the entries after it. To add many entries in unknown order, use
/// [`Extend`] or [`FromIterator`]: one sort, whatever the order.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AsMap {
    /// Sorted by address, addresses unique.
    entries: Vec<(IpAddr, As)>,
}

impl AsMap {
    /// An empty map.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// An empty map with room for `capacity` ASes.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// A map from entries the caller has sorted by address and freed of repeated addresses.
    /// Checks both in one pass and sorts only when they do not hold (the last entry for an
    /// address wins, as with [`FromIterator`]).
    #[must_use]
    pub fn from_sorted_vec(entries: Vec<(IpAddr, As)>) -> Self {
        if entries.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            Self { entries }
        } else {
            entries.into_iter().collect()
        }
    }

    /// A map from entries sorted by address with no address repeated, as built by
    /// [`crate::desired`] from a [`crate::index::ConfigIndex`]'s AS order (checked in debug
    /// builds only).
    pub(crate) fn from_strictly_sorted(entries: Vec<(IpAddr, As)>) -> Self {
        debug_assert!(entries.windows(2).all(|pair| pair[0].0 < pair[1].0));
        Self { entries }
    }

    /// The number of ASes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no AS.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, sorted by address.
    #[must_use]
    pub fn as_slice(&self) -> &[(IpAddr, As)] {
        &self.entries
    }

    fn search(&self, address: &IpAddr) -> Result<usize, usize> {
        self.entries.binary_search_by(|(a, _)| a.cmp(address))
    }

    /// The AS at `address`.
    #[must_use]
    pub fn get(&self, address: &IpAddr) -> Option<&As> {
        self.search(address).ok().map(|i| &self.entries[i].1)
    }

    /// The AS at `address`, to change its weight or flush hint.
    #[must_use]
    pub fn get_mut(&mut self, address: &IpAddr) -> Option<&mut As> {
        self.search(address).ok().map(|i| &mut self.entries[i].1)
    }

    /// Whether there is an AS at `address`.
    #[must_use]
    pub fn contains_key(&self, address: &IpAddr) -> bool {
        self.search(address).is_ok()
    }

    /// Sets the AS at `address`; returns the one it replaces.
    pub fn insert(&mut self, address: IpAddr, value: As) -> Option<As> {
        if self.entries.last().is_none_or(|(last, _)| *last < address) {
            self.entries.push((address, value));
            return None;
        }
        match self.search(&address) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (address, value));
                None
            }
        }
    }

    /// Removes the AS at `address`; returns it.
    pub fn remove(&mut self, address: &IpAddr) -> Option<As> {
        let i = self.search(address).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// Removes every AS.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The ASes in address order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    /// The ASes in address order, each one changeable.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&IpAddr, &mut As)> + '_ {
        self.entries.iter_mut().map(|(a, x)| (&*a, x))
    }

    /// The addresses in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &IpAddr> + ExactSizeIterator + '_ {
        self.entries.iter().map(|(a, _)| a)
    }

    /// The ASes in address order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &As> + ExactSizeIterator + '_ {
        self.entries.iter().map(|(_, x)| x)
    }

    /// The ASes in address order, each one changeable.
    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut As> + ExactSizeIterator + '_ {
        self.entries.iter_mut().map(|(_, x)| x)
    }
}

/// The entries of an [`AsMap`] in address order, as `(&address, &as)` pairs.
#[derive(Debug, Clone)]
pub struct Iter<'a>(std::slice::Iter<'a, (IpAddr, As)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a IpAddr, &'a As);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(a, x)| (a, x))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(a, x)| (a, x))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl FusedIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a AsMap {
    type Item = (&'a IpAddr, &'a As);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for AsMap {
    type Item = (IpAddr, As);
    type IntoIter = std::vec::IntoIter<(IpAddr, As)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// Collects entries in any order; of several entries for one address the last one counts, as
/// with repeated [`AsMap::insert`].
impl FromIterator<(IpAddr, As)> for AsMap {
    fn from_iter<I: IntoIterator<Item = (IpAddr, As)>>(iter: I) -> Self {
        let mut map = Self::new();
        map.extend(iter);
        map
    }
}

/// Adds entries in any order at the cost of one sort, however many there are (inserting them
/// one by one in descending order would move the whole vector each time); of several entries
/// for one address the last one counts, as with repeated [`AsMap::insert`].
impl Extend<(IpAddr, As)> for AsMap {
    fn extend<I: IntoIterator<Item = (IpAddr, As)>>(&mut self, iter: I) {
        let old = self.entries.len();
        self.entries.extend(iter);
        // Entries past the old ones in increasing order, the usual case, are in place.
        if self.entries[old.saturating_sub(1)..]
            .windows(2)
            .all(|pair| pair[0].0 < pair[1].0)
        {
            return;
        }
        // Stable, so entries for one address keep their order; each run keeps its first slot
        // with the last value.
        self.entries.sort_by_key(|(a, _)| *a);
        self.entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
    }
}

impl<const N: usize> From<[(IpAddr, As); N]> for AsMap {
    fn from(entries: [(IpAddr, As); N]) -> Self {
        entries.into_iter().collect()
    }
}

/// # Panics
/// When there is no AS at the address, as indexing an ordered map does.
impl Index<&IpAddr> for AsMap {
    type Output = As;

    fn index(&self, address: &IpAddr) -> &As {
        self.get(address).expect("no AS at this address")
    }
}

/// Prints as a map, `{address: as, ...}`.
impl fmt::Debug for AsMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
