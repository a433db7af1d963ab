//! The in-memory event store's index of stored event ids: where each id is
//! in the log.
//!
//! Fresh event ids are time-ordered (version 7 UUIDs, [`EventMetadata::new`]),
//! so nearly every such id appended is greater than all stored before it.
//! Those go to the end of a sorted vector, as Postgres's btree inserts at
//! its right edge: no hashing, and memory touched in order. A hash table
//! holds the rest: ids of other versions (derived from command ids, chosen
//! by a caller), which would otherwise sort above every later v7 id and
//! keep it out of the vector, and a v7 id that lost a race to the store's
//! lock. So ids of any kind, in any order, are indexed correctly.
//!
//! [`EventMetadata::new`]: crate::EventMetadata::new

use std::collections::HashMap;

use uuid::{Uuid, Version};

use super::chunked::Chunked;

#[derive(Debug, Default)]
pub(super) struct EventIds {
    /// Ids each greater than the one before, with their log indexes.
    ascending: Chunked<(Uuid, usize)>,
    /// Every other id.
    others: HashMap<Uuid, usize>,
}

impl EventIds {
    /// The log index of `id`, if it is stored.
    pub(super) fn get(&self, id: &Uuid) -> Option<usize> {
        let in_order = match self.ascending.last() {
            Some((last, _)) if id <= last => self.find_ascending(id),
            _ => None,
        };
        in_order.or_else(|| self.others.get(id).copied())
    }

    /// A binary search of `ascending` for `id`.
    fn find_ascending(&self, id: &Uuid) -> Option<usize> {
        let (mut low, mut high) = (0, self.ascending.len());
        while low < high {
            let middle = low + (high - low) / 2;
            let (stored, index) = &self.ascending[middle];
            match stored.cmp(id) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(*index),
            }
        }
        None
    }

    /// Whether `id` is stored.
    pub(super) fn contains(&self, id: &Uuid) -> bool {
        self.get(id).is_some()
    }

    /// Records that `id`, not stored yet, is at `index` of the log.
    pub(super) fn insert(&mut self, id: Uuid, index: usize) {
        let in_order = id.get_version() == Some(Version::SortRand)
            && self.ascending.last().is_none_or(|(last, _)| id > *last);
        if in_order {
            self.ascending.push((id, index));
        } else {
            self.others.insert(id, index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EventIds;
    use uuid::Uuid;

    #[test]
    fn ids_in_any_order_are_found_where_they_were_put_and_no_others() {
        let mut ids = EventIds::default();
        let ordered: Vec<Uuid> = (0..100).map(|_| Uuid::now_v7()).collect();
        let late = ordered[40];
        for (index, id) in ordered.iter().enumerate() {
            if *id != late {
                ids.insert(*id, index);
            }
        }
        // An id smaller than the last one stored, and random ones.
        ids.insert(late, 40);
        let random: Vec<Uuid> = (0..50).map(|_| Uuid::new_v4()).collect();
        for (offset, id) in random.iter().enumerate() {
            ids.insert(*id, 100 + offset);
        }
        for (index, id) in ordered.iter().chain(&random).enumerate() {
            assert_eq!(ids.get(id), Some(index), "{id}");
        }
        assert!(!ids.contains(&Uuid::now_v7()), "a newer id is not stored");
        assert!(!ids.contains(&Uuid::new_v4()));
        assert!(!ids.contains(&Uuid::nil()));
        assert!(
            ids.others.contains_key(&late),
            "an id out of order went to the table"
        );
        assert_eq!(
            ids.ascending.len(),
            99,
            "the v7 ids in order went to the end"
        );
        assert_eq!(ids.others.len(), 51, "v4 ids went to the table");
        // A later v7 id still goes to the end, whatever other ids came.
        let later = Uuid::now_v7();
        ids.insert(later, 150);
        assert_eq!(ids.ascending.last(), Some(&(later, 150)));
    }
}
