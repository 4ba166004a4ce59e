//! Salted Merkle batches: many files anchored by one 32-byte root.
//!
//! A leaf commits to one file without showing it: `leaf = SHA-256(0x00 ‖ salt ‖ file hash)`,
//! with a random 32-byte salt per file, so the public chain never carries a raw file hash that
//! anyone holding a copy could look up. Two children make a parent:
//! `node = SHA-256(0x01 ‖ left ‖ right)`; the prefixes keep a leaf from ever being read as a node
//! (the second-preimage trick on unprefixed trees). A level of odd length carries its last node
//! up unchanged rather than pairing it with itself, so no two different batches share a root
//! (Bitcoin's duplication flaw, CVE-2012-2459).
//!
//! A proof of one file is its salt and the siblings on the way up, each with the side it sits on;
//! anyone can recompute the root with nothing but SHA-256 ([`root_from`]).

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const LEAF: u8 = 0x00;
const NODE: u8 = 0x01;

/// The leaf of a file: `SHA-256(0x00 ‖ salt ‖ file hash)`.
pub fn leaf(salt: &B256, file_hash: &B256) -> B256 {
    B256::from(<[u8; 32]>::from(
        Sha256::new()
            .chain_update([LEAF])
            .chain_update(salt)
            .chain_update(file_hash)
            .finalize(),
    ))
}

fn node(left: &B256, right: &B256) -> B256 {
    B256::from(<[u8; 32]>::from(
        Sha256::new()
            .chain_update([NODE])
            .chain_update(left)
            .chain_update(right)
            .finalize(),
    ))
}

/// Which side of the path a sibling sits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The sibling is the left child: `node(sibling, current)`.
    Left,
    /// The sibling is the right child: `node(current, sibling)`.
    Right,
}

/// One step from a leaf towards the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The sibling's hash.
    pub sibling: B256,
    /// The side it sits on.
    pub side: Side,
}

/// A whole batch's tree, every level kept so that each leaf's path can be read off.
#[derive(Clone, Debug)]
pub struct Tree {
    /// `levels[0]` are the leaves, the last level is the root alone.
    levels: Vec<Vec<B256>>,
}

impl Tree {
    /// Builds the tree over `leaves`, in their order; `None` when there are none.
    pub fn new(leaves: Vec<B256>) -> Option<Self> {
        if leaves.is_empty() {
            return None;
        }
        let mut levels = vec![leaves];
        while let Some(below) = levels.last().filter(|level| level.len() > 1) {
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node(left, right),
                    [carried] => *carried,
                    _ => unreachable!("chunks(2) yields one or two"),
                })
                .collect();
            levels.push(above);
        }
        Some(Self { levels })
    }

    /// The root.
    pub fn root(&self) -> B256 {
        // Construction guarantees a last level of exactly one node.
        self.levels[self.levels.len() - 1][0]
    }

    /// The number of leaves.
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// Never true: a tree has at least one leaf.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The path from leaf `index` to the root; `None` past the last leaf.
    pub fn path(&self, mut index: usize) -> Option<Vec<Step>> {
        if index >= self.len() {
            return None;
        }
        let mut path = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = index ^ 1;
            if let Some(hash) = level.get(sibling) {
                let side = if sibling < index {
                    Side::Left
                } else {
                    Side::Right
                };
                path.push(Step {
                    sibling: *hash,
                    side,
                });
            }
            index /= 2;
        }
        Some(path)
    }
}

/// The root that `leaf` and `path` lead to.
pub fn root_from(leaf: B256, path: &[Step]) -> B256 {
    path.iter().fold(leaf, |current, step| match step.side {
        Side::Left => node(&step.sibling, &current),
        Side::Right => node(&current, &step.sibling),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<B256> {
        (0..n)
            .map(|i| leaf(&B256::repeat_byte(i as u8), &B256::with_last_byte(i as u8)))
            .collect()
    }

    #[test]
    fn a_batch_of_one_is_its_own_root() {
        let tree = Tree::new(leaves(1)).expect("one leaf");
        assert_eq!(tree.root(), leaves(1)[0]);
        assert_eq!(tree.path(0), Some(Vec::new()));
        assert_eq!(tree.path(1), None);
    }

    #[test]
    fn no_batch_no_tree() {
        assert!(Tree::new(Vec::new()).is_none());
    }

    #[test]
    fn an_odd_last_node_is_carried_up_not_paired_with_itself() {
        // [a b c] and [a b c c] would share a root if c were paired with itself.
        let three = leaves(3);
        let mut four = three.clone();
        four.push(three[2]);
        let (three, four) = (Tree::new(three).expect("3"), Tree::new(four).expect("4"));
        assert_ne!(three.root(), four.root());
        assert_eq!(three.path(2).expect("leaf 2").len(), 1);
    }

    #[test]
    fn a_leaf_is_never_read_as_a_node() {
        let l = leaves(2);
        // The same 64 bytes hashed as a node and as a (salt, file hash) leaf.
        assert_ne!(node(&l[0], &l[1]), leaf(&l[0], &l[1]));
    }

    #[test]
    fn the_salt_hides_the_file_hash() {
        let file = B256::repeat_byte(7);
        assert_ne!(
            leaf(&B256::repeat_byte(1), &file),
            leaf(&B256::repeat_byte(2), &file)
        );
    }

    proptest! {
        #[test]
        fn every_leafs_path_leads_to_the_root(n in 1usize..300, pick in any::<prop::sample::Index>()) {
            let l = leaves(n);
            let tree = Tree::new(l.clone()).expect("non-empty");
            let i = pick.index(n);
            let path = tree.path(i).expect("in range");
            prop_assert_eq!(root_from(l[i], &path), tree.root());
            // log2 ceiling: no path is longer than the tree is deep.
            prop_assert!(path.len() <= usize::BITS as usize - (n - 1).leading_zeros() as usize);
        }

        #[test]
        fn another_leaf_or_a_changed_step_misses_the_root(n in 2usize..100, pick in any::<prop::sample::Index>()) {
            let l = leaves(n);
            let tree = Tree::new(l.clone()).expect("non-empty");
            let i = pick.index(n);
            let mut path = tree.path(i).expect("in range");
            prop_assert_ne!(root_from(B256::repeat_byte(0xee), &path), tree.root());
            path[0].side = match path[0].side { Side::Left => Side::Right, Side::Right => Side::Left };
            prop_assert_ne!(root_from(l[i], &path), tree.root());
        }
    }
}
