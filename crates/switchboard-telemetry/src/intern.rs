//! Names kept for the life of the process, so that the attributes every span and data point
//! copies are plain `&'static str`.
//!
//! A span copies its series' attributes ([`Series`](crate::series::Series)) and the exporter
//! drops them on its own thread. With shared (`Arc<str>`) values, every call takes and gives
//! back a reference on the same few counters from several threads; with static ones, a copy
//! is a copy. Server, tool and prompt names, method names, protocol revisions and span names
//! are few and long-lived, so they are kept once here. The set is bounded ([`MAX_NAMES`]
//! names of at most [`MAX_LEN`] bytes, under 1 MiB); past that, callers fall back to shared
//! values, which record the same data.

use std::{
    collections::HashSet,
    sync::{Mutex, OnceLock, PoisonError},
};

/// How many names the process keeps at most.
pub(crate) const MAX_NAMES: usize = 4096;
/// The longest name kept, in bytes.
pub(crate) const MAX_LEN: usize = 256;

static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();

/// `name` as a `&'static str`: the one kept, or a new one while there is room. `None` when
/// `name` is too long or the set is full.
pub(crate) fn intern(name: &str) -> Option<&'static str> {
    if name.len() > MAX_LEN {
        return None;
    }
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(&kept) = names.get(name) {
        return Some(kept);
    }
    if names.len() >= MAX_NAMES {
        return None;
    }
    let kept: &'static str = Box::leak(Box::from(name));
    names.insert(kept);
    Some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_kept_once() {
        let a = intern("intern-test-server").expect("room");
        let b = intern(&String::from("intern-test-server")).expect("room");
        assert_eq!(a, "intern-test-server");
        assert!(
            std::ptr::eq(a, b),
            "the second lookup returns the kept name"
        );
    }

    #[test]
    fn long_names_are_not_kept() {
        assert_eq!(intern(&"x".repeat(MAX_LEN + 1)), None);
        assert!(intern(&"y".repeat(MAX_LEN)).is_some());
    }
}
