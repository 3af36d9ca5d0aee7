//! A max-tree over slots: finds the first slot holding at least some value.

use alloc::collections::TryReserveError;
use alloc::vec::Vec;

/// Complete binary tree of maxima over `capacity()` slots, all 0 initially.
///
/// Node 1 is the root, the children of node `i` are `2i` and `2i + 1`, and
/// slot `s` is leaf `capacity() + s`.
pub(super) struct MaxTree {
    nodes: Vec<u32>,
}

impl MaxTree {
    /// A tree with one slot that can grow to `room` slots (at least one)
    /// without allocating, or the error of the heap.
    pub(super) fn try_with_room(room: usize) -> Result<Self, TryReserveError> {
        let mut nodes = Vec::new();
        nodes.try_reserve_exact(2 * room.max(1).next_power_of_two())?;
        nodes.resize(2, 0);
        Ok(Self { nodes })
    }

    /// Number of slots.
    pub(super) fn capacity(&self) -> usize {
        self.nodes.len() / 2
    }

    /// The most slots [`rebuild`](Self::rebuild) can make without allocating.
    pub(super) fn room(&self) -> usize {
        let leaves = self.nodes.capacity() / 2;
        // The largest power of two not above `leaves` (which is at least 1).
        1 << leaves.ilog2()
    }

    /// Replaces all slots with `values`, resizing the tree to fit them. Does
    /// not allocate if there are at most [`room`](Self::room) values.
    pub(super) fn rebuild(&mut self, values: impl ExactSizeIterator<Item = u32>) {
        let leaves = values.len().next_power_of_two();
        self.nodes.clear();
        self.nodes.resize(2 * leaves, 0);
        for (leaf, value) in self.nodes[leaves..].iter_mut().zip(values) {
            *leaf = value;
        }
        for node in (1..leaves).rev() {
            self.nodes[node] = self.nodes[2 * node].max(self.nodes[2 * node + 1]);
        }
    }

    /// Sets slot `slot` (`< capacity()`) to `value` in O(log capacity).
    pub(super) fn set(&mut self, slot: usize, value: u32) {
        let mut node = self.capacity() + slot;
        if self.nodes[node] == value {
            return;
        }
        self.nodes[node] = value;
        while node > 1 {
            node /= 2;
            let max = self.nodes[2 * node].max(self.nodes[2 * node + 1]);
            if self.nodes[node] == max {
                break;
            }
            self.nodes[node] = max;
        }
    }

    /// The lowest slot at or after `from` whose value is at least `min`, in
    /// O(log capacity).
    pub(super) fn first_at_least(&self, min: u32, from: usize) -> Option<usize> {
        let leaves = self.capacity();
        if from >= leaves {
            return None;
        }
        // Climb from the leaf of `from` until a right sibling qualifies: it
        // covers the slots just after those seen so far.
        let mut node = leaves + from;
        if self.nodes[node] < min {
            loop {
                if node == 1 {
                    return None;
                }
                if node.is_multiple_of(2) && self.nodes[node + 1] >= min {
                    node += 1;
                    break;
                }
                node /= 2;
            }
        }
        // Descend to the leftmost qualifying leaf.
        while node < leaves {
            node *= 2;
            if self.nodes[node] < min {
                node += 1;
            }
        }
        Some(node - leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_first_slot_at_least() {
        let mut tree = MaxTree::try_with_room(1).unwrap();
        assert_eq!(tree.room(), 1);
        assert_eq!(tree.first_at_least(1, 0), None);
        assert_eq!(tree.first_at_least(0, 0), Some(0));
        let values = [3u32, 0, 7, 1, 7, 2];
        tree.rebuild(values.iter().copied());
        assert_eq!(tree.capacity(), 8);
        assert!(tree.room() >= 8);
        let room = MaxTree::try_with_room(5).unwrap();
        assert_eq!((room.capacity(), room.room()), (1, 8));
        for min in 0..9 {
            for from in 0..9 {
                let expected =
                    (from..tree.capacity()).find(|&s| values.get(s).copied().unwrap_or(0) >= min);
                assert_eq!(
                    tree.first_at_least(min, from),
                    expected,
                    "min={min} from={from}"
                );
            }
        }
        tree.set(4, 0);
        tree.set(2, 1);
        assert_eq!(tree.first_at_least(7, 0), None);
        assert_eq!(tree.first_at_least(3, 1), None);
        assert_eq!(tree.first_at_least(2, 1), Some(5));
        tree.set(7, 9);
        assert_eq!(tree.first_at_least(4, 0), Some(7));
        tree.rebuild(core::iter::empty());
        assert_eq!(tree.capacity(), 1);
        assert_eq!(tree.first_at_least(1, 0), None);
    }
}
