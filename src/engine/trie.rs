//! The keyword trie: every literal pattern of a matcher, walked anchored from a word start.
//!
//! A radix tree (chains of single children merged into one label) in one byte array, laid out
//! in pre-order, so a walk reads each label as a run of bytes and a node's first child is the
//! bytes right after it. An anchored walk never needs failure links, and the walk is where a
//! scan spends its time waiting on memory: a general Aho-Corasick NFA keeps each state apart
//! (a record of its own, with its failure link and matches, per byte of a phrase), this keeps
//! a phrase's unshared tail in one label.
//!
//! Node layout (offsets in bytes from the node's start):
//!
//! | bytes | what |
//! |---|---|
//! | 0..4 | the pattern ending at the end of the label (little-endian `u32`), [`NONE`] if none |
//! | 4 | label length `l` (at most 255: a longer chain is split) |
//! | 5..7 | child count `n` (little-endian `u16`: up to 256) |
//! | 7..7+l | the label |
//! | 7+l..7+l+n | the children's first bytes, ascending |
//! | 7+l+n..7+l+5n | the children's offsets in the array (little-endian `u32` each) |
//!
//! The root is a table of 256 offsets, one per first byte.

/// The id of a pattern is its index in the slice the trie was built from.
pub type PatternId = u32;

/// No pattern ends here; no child for this byte.
const NONE: u32 = u32::MAX;

/// Longest label one node holds (its length is stored in a byte); a longer chain is split.
const MAX_LABEL: usize = u8::MAX as usize;

/// Bytes before a node's label.
const HEADER: usize = 7;

/// An anchored radix trie of byte strings.
#[derive(Debug, Clone)]
pub struct Trie {
    /// The node each first byte leads to, [`NONE`] when no pattern starts with it.
    root: Box<[u32; 256]>,
    nodes: Vec<u8>,
}

impl Trie {
    /// Builds the trie of `patterns`. A pattern's id is its index; an empty pattern is
    /// ignored, and a repeated one is found under its first index.
    pub fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Trie {
        let mut sorted: Vec<(&[u8], PatternId)> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_ref(), i as PatternId))
            .filter(|(p, _)| !p.is_empty())
            .collect();
        sorted.sort_unstable();
        sorted.dedup_by(|a, b| a.0 == b.0);
        let mut trie = Trie {
            root: Box::new([NONE; 256]),
            nodes: Vec::new(),
        };
        for group in sorted.chunk_by(|a, b| a.0[0] == b.0[0]) {
            trie.root[usize::from(group[0].0[0])] = trie.node(group, 1);
        }
        trie.nodes.shrink_to_fit();
        trie
    }

    /// Heap bytes held.
    pub fn memory_usage(&self) -> usize {
        std::mem::size_of::<[u32; 256]>() + self.nodes.capacity()
    }

    /// Lays out the node for `group` (sorted, sharing their first `depth` bytes, the last of
    /// which led here) and its subtree; returns its offset.
    fn node(&mut self, group: &[(&[u8], PatternId)], depth: usize) -> u32 {
        let first = group[0].0;
        let last = group[group.len() - 1].0;
        // The label runs to where the patterns part (first and last of a sorted group share
        // what all share), or to where the shortest ends (it sorts first), or to the cap.
        let shared = first[depth..]
            .iter()
            .zip(&last[depth..])
            .take_while(|(a, b)| a == b)
            .count();
        let end = depth + shared.min(MAX_LABEL);
        let end = end.min(first.len());
        let (pattern, rest) = if first.len() == end {
            (group[0].1, &group[1..])
        } else {
            (NONE, group)
        };
        let children: Vec<&[(&[u8], PatternId)]> = rest.chunk_by(|a, b| a.0[end] == b.0[end]).collect();
        let at = self.nodes.len();
        self.nodes.extend_from_slice(&pattern.to_le_bytes());
        self.nodes.push((end - depth) as u8);
        self.nodes
            .extend_from_slice(&(children.len() as u16).to_le_bytes());
        self.nodes.extend_from_slice(&first[depth..end]);
        self.nodes.extend(children.iter().map(|c| c[0].0[end]));
        let offsets = self.nodes.len();
        self.nodes.resize(offsets + 4 * children.len(), 0);
        for (i, child) in children.iter().enumerate() {
            let offset = self.node(child, end + 1);
            self.nodes[offsets + 4 * i..offsets + 4 * i + 4].copy_from_slice(&offset.to_le_bytes());
        }
        // The ruleset's keyword limit (`limits::MAX_KEYWORD_BYTES`) keeps the array far below
        // 4 GiB: each pattern adds at most its bytes and two nodes' bookkeeping.
        u32::try_from(at).expect("the trie is smaller than 4 GiB")
    }

    /// Walks `text` from its start, calling `found(pattern, end)` for every pattern that
    /// `text` starts with, shortest first (`end` is the pattern's length).
    #[inline]
    pub fn walk(&self, text: &[u8], mut found: impl FnMut(PatternId, usize)) {
        let Some(&first) = text.first() else {
            return;
        };
        let mut node = self.root[usize::from(first)];
        let mut pos = 1;
        let nodes = self.nodes.as_slice();
        while node != NONE {
            let at = node as usize;
            let Some(header) = nodes.get(at..at + HEADER) else {
                return;
            };
            let pattern = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let label_len = usize::from(header[4]);
            let children = usize::from(u16::from_le_bytes([header[5], header[6]]));
            let label_at = at + HEADER;
            // Byte by byte: labels are short (most are empty or a few bytes), where a call to
            // memcmp costs more than the comparison.
            let Some(rest) = text.get(pos..pos + label_len) else {
                return;
            };
            if rest
                .iter()
                .zip(&nodes[label_at..label_at + label_len])
                .any(|(a, b)| a != b)
            {
                return;
            }
            pos += label_len;
            if pattern != NONE {
                found(pattern, pos);
            }
            let Some(&byte) = text.get(pos) else {
                return;
            };
            let keys_at = label_at + label_len;
            let keys = &nodes[keys_at..keys_at + children];
            let Some(i) = position(keys, byte) else {
                return;
            };
            let o = keys_at + children + 4 * i;
            // One bounds check and one load for the four bytes.
            let Some(&offset) = nodes[o..].first_chunk::<4>() else {
                return;
            };
            node = u32::from_le_bytes(offset);
            pos += 1;
        }
    }
}

/// Where `byte` is in `keys` (distinct bytes): eight keys a step, as one word compared with
/// the byte repeated (the zero-byte test of "Bit Twiddling Hacks", S. E. Anderson: its lowest
/// flagged byte is always a true zero), then the rest one by one. Nodes near the root have
/// dozens of children, where comparing one key at a time costs more than the walk.
#[inline]
fn position(keys: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let repeated = ONES * u64::from(byte);
    let mut chunks = keys.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ repeated;
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(base + zeros.trailing_zeros() as usize / 8);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&k| k == byte)
        .map(|i| base + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn found(trie: &Trie, text: &str) -> Vec<(PatternId, usize)> {
        let mut out = Vec::new();
        trie.walk(text.as_bytes(), |p, end| out.push((p, end)));
        out
    }

    #[test]
    fn every_pattern_the_text_starts_with_is_found_shortest_first() {
        let trie = Trie::new(&["we", "we would like", "we would like to cancel", "web", "wir"]);
        assert_eq!(
            found(&trie, "we would like to cancel it"),
            vec![(0, 2), (1, 13), (2, 23)]
        );
        assert_eq!(found(&trie, "webshop"), vec![(0, 2), (3, 3)]);
        assert_eq!(found(&trie, "we would"), vec![(0, 2)]);
        assert_eq!(found(&trie, "wi"), vec![]);
    }

    #[test]
    fn a_pattern_is_not_found_where_the_text_ends_inside_it() {
        let trie = Trie::new(&["rechnung"]);
        assert!(found(&trie, "rechnun").is_empty());
        assert_eq!(found(&trie, "rechnung"), vec![(0, 8)]);
    }

    #[test]
    fn labels_longer_than_a_node_holds_are_split() {
        let long = "a".repeat(600);
        let trie = Trie::new(&[long.as_str(), "ab"]);
        assert_eq!(found(&trie, &format!("{long}!")), vec![(0, 600)]);
        assert_eq!(found(&trie, &long[..599]), vec![]);
    }

    #[test]
    fn repeated_and_empty_patterns_are_ignored() {
        let trie = Trie::new(&["", "x", "x"]);
        assert_eq!(found(&trie, "xy"), vec![(1, 1)]);
    }

    #[test]
    fn a_node_may_have_every_byte_as_a_child() {
        let patterns: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b'k', b]).collect();
        let trie = Trie::new(&patterns);
        for b in 0..=255u8 {
            let mut out = Vec::new();
            trie.walk(&[b'k', b, b'z'], |p, end| out.push((p, end)));
            assert_eq!(out, vec![(u32::from(b), 2)]);
        }
    }

    #[test]
    fn a_key_is_found_in_any_lane_of_a_word_and_in_the_tail() {
        let keys: Vec<u8> = (0..=255u8).rev().collect();
        for b in 0..=255u8 {
            assert_eq!(position(&keys, b), Some(255 - usize::from(b)));
            assert_eq!(position(&keys[..20], b), (b >= 236).then(|| 255 - usize::from(b)));
        }
        assert_eq!(position(&[], 7), None);
    }

    proptest! {
        /// The walk finds exactly the patterns the text starts with, as a scan of every
        /// pattern would.
        #[test]
        fn the_walk_agrees_with_comparing_every_pattern(
            patterns in proptest::collection::vec("[a-t ]{1,6}|a{250,300}[ab]{0,3}", 1..60),
            text in "[a-t ]{0,10}|a{240,310}[ab ]{0,4}",
        ) {
            let trie = Trie::new(&patterns);
            let mut expected: Vec<(PatternId, usize)> = Vec::new();
            for (i, p) in patterns.iter().enumerate() {
                let first = patterns.iter().position(|q| q == p) == Some(i);
                if first && text.as_bytes().starts_with(p.as_bytes()) {
                    expected.push((i as PatternId, p.len()));
                }
            }
            expected.sort_by_key(|&(_, end)| end);
            prop_assert_eq!(found(&trie, &text), expected);
        }
    }
}
