//! Entry weights: how many bytes an entry counts against
//! [`CacheConfig::max_bytes`](crate::CacheConfig::max_bytes).

use std::sync::Arc;

/// Fixed bytes added to every entry for the cache's own bookkeeping
/// (freshness times, tags pointer, moka's node). An estimate.
pub const ENTRY_OVERHEAD: usize = 128;

/// The approximate heap and inline size of a value, in bytes.
///
/// Keys and values of [`Cache::new`](crate::Cache::new) implement it; for
/// other types pass a weigher to [`CacheBuilder::with_weigher`](crate::CacheBuilder::with_weigher).
pub trait Weigh {
    /// Approximate size in bytes. It need not be exact, only consistent.
    fn weigh(&self) -> usize;
}

impl Weigh for str {
    fn weigh(&self) -> usize {
        self.len()
    }
}

impl Weigh for String {
    fn weigh(&self) -> usize {
        size_of::<String>() + self.len()
    }
}

impl Weigh for [u8] {
    fn weigh(&self) -> usize {
        self.len()
    }
}

impl Weigh for Vec<u8> {
    fn weigh(&self) -> usize {
        size_of::<Vec<u8>>() + self.len()
    }
}

impl<T: Weigh + ?Sized> Weigh for Arc<T> {
    fn weigh(&self) -> usize {
        size_of::<Arc<T>>() + T::weigh(self)
    }
}

impl<T: Weigh + ?Sized> Weigh for Box<T> {
    fn weigh(&self) -> usize {
        size_of::<Box<T>>() + T::weigh(self)
    }
}

macro_rules! weigh_by_size {
    ($($ty:ty),*) => {
        $(impl Weigh for $ty {
            fn weigh(&self) -> usize {
                size_of::<$ty>()
            }
        })*
    };
}

weigh_by_size!(
    (),
    bool,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize
);

/// The weight of one entry as moka wants it: the entry's bytes plus
/// [`ENTRY_OVERHEAD`], saturated to `u32::MAX`.
pub(crate) fn entry_weight(bytes: usize) -> u32 {
    u32::try_from(bytes.saturating_add(ENTRY_OVERHEAD)).unwrap_or(u32::MAX)
}
