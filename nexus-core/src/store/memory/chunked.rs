//! An append-only vector kept in chunks of a fixed size.
//!
//! Guarantee: element `i` stays at index `i`, and once the first chunk is
//! full a push never moves what is stored. A `Vec` that doubles copies all
//! it holds into fresh memory at each doubling: for a store that only
//! grows, those copies (and the page faults of touching twice the memory)
//! were most of an append's cost under load. The first chunk grows as a
//! `Vec` does, so a small stream stays small; every later chunk is made at
//! its full size once.

/// Elements per chunk.
const CHUNK: usize = 4_096;

/// An append-only sequence in chunks of [`CHUNK`] elements.
#[derive(Debug)]
pub(super) struct Chunked<T> {
    // Invariant: every chunk but the last holds exactly `CHUNK` elements,
    // so element `i` is at `chunks[i / CHUNK][i % CHUNK]`.
    chunks: Vec<Vec<T>>,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Self { chunks: Vec::new() }
    }
}

impl<T> Chunked<T> {
    /// How many elements are stored.
    pub(super) fn len(&self) -> usize {
        match self.chunks.last() {
            Some(last) => (self.chunks.len() - 1) * CHUNK + last.len(),
            None => 0,
        }
    }

    /// Appends `value` at index `len()`.
    pub(super) fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(value),
            Some(_) => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(value);
                self.chunks.push(chunk);
            }
            None => self.chunks.push(vec![value]),
        }
    }

    /// The element at `index`, if there is one.
    pub(super) fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    /// The last element, if any.
    pub(super) fn last(&self) -> Option<&T> {
        self.chunks.last()?.last()
    }

    /// The elements from `start` (clamped to the end) on, in order.
    /// (No exact size: a caller collecting them reserves `len() - start`.)
    pub(super) fn iter_from(&self, start: usize) -> impl Iterator<Item = &T> {
        let start = start.min(self.len());
        let (first, skip) = (start / CHUNK, start % CHUNK);
        self.chunks
            .get(first..)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .flat_map(move |(n, chunk)| chunk[if n == 0 { skip } else { 0 }..].iter())
    }
}

impl<T> std::ops::Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        self.get(index)
            .unwrap_or_else(|| panic!("index {index} out of {} elements", self.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::{CHUNK, Chunked};

    #[test]
    fn elements_keep_their_index_and_address_across_chunks() {
        let mut chunked: Chunked<usize> = Chunked::default();
        assert_eq!(chunked.len(), 0);
        assert!(chunked.last().is_none());
        let count = 2 * CHUNK + 17;
        for i in 0..count {
            chunked.push(i);
        }
        assert_eq!(chunked.len(), count);
        assert_eq!(chunked.last(), Some(&(count - 1)));
        assert!((0..count).all(|i| chunked[i] == i));
        assert!(chunked.get(count).is_none());
        // The first chunk was full before the second was made, so later
        // pushes did not move it.
        let mut moved = Chunked::default();
        for i in 0..CHUNK {
            moved.push(i);
        }
        let full: *const usize = &raw const moved[0];
        for i in CHUNK..3 * CHUNK {
            moved.push(i);
        }
        assert_eq!(full, &raw const moved[0]);
        for start in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            count - 1,
            count,
            count + 5,
        ] {
            let tail: Vec<usize> = chunked.iter_from(start).copied().collect();
            let expected: Vec<usize> = (start.min(count)..count).collect();
            assert_eq!(tail, expected, "from {start}");
        }
    }
}
