//! The keyword retriever: an inverted index scored with BM25.
//!
//! One [`KeywordIndex`] per scope partition, addressed by the partition's slots
//! (dense `0..len`), so scores accumulate into a plain array. Removal moves the
//! last document into the freed slot, like the partition's other columns.
//!
//! Corpus statistics (document count, average length, document frequency) are
//! summed over every partition a query names, so one query's scores are
//! comparable across its scopes.

use super::text;
use std::collections::HashMap;

/// BM25's two knobs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation: higher lets repeated words count for longer.
    pub k1: f32,
    /// Length normalisation: 0 ignores document length, 1 normalises fully.
    pub b: f32,
}

impl Default for Bm25Params {
    /// `k1 = 1.2` (the textbook value) and `b = 1`: full length normalisation,
    /// where the textbook says 0.75. A memory should say one thing; a long one
    /// (a pasted answer, a rambling turn) matches many queries by accident. On
    /// pooled LongMemEval turns, b = 1 gave hybrid recall@5 0.71 against 0.66 at
    /// 0.75 (see `eval.rs`).
    fn default() -> Self {
        Self { k1: 1.2, b: 1.0 }
    }
}

/// One document's count of one term.
#[derive(Clone, Copy, Debug)]
struct Posting {
    slot: u32,
    tf: u32,
}

/// An inverted index over one partition's texts.
#[derive(Debug, Default)]
pub(crate) struct KeywordIndex {
    /// Term → term id. Terms are never forgotten (a removed memory's words stay
    /// with an empty posting list); vocabularies grow slowly, so that is cheap.
    vocab: HashMap<String, u32>,
    /// Postings by term id, in no particular order.
    postings: Vec<Vec<Posting>>,
    /// Each slot's distinct terms with their counts, to undo them on removal.
    docs: Vec<Vec<(u32, u32)>>,
    /// Each slot's length in terms.
    doc_len: Vec<u32>,
    /// The sum of `doc_len`.
    total_len: u64,
}

/// Corpus-wide numbers one query's BM25 scores are computed with.
#[derive(Clone, Debug)]
pub(crate) struct QueryTerms {
    /// Each distinct query term with its inverse document frequency.
    pub terms: Vec<(String, f32)>,
    /// Average document length over the searched partitions.
    pub avg_len: f32,
}

impl KeywordIndex {
    /// Documents held.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Sum of document lengths.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// How many documents contain `term`.
    pub fn df(&self, term: &str) -> usize {
        self.vocab
            .get(term)
            .map_or(0, |&t| self.postings[t as usize].len())
    }

    /// Indexes `text` as a new document in the next slot (`len()` before the call).
    pub fn push(&mut self, text: &str) {
        let slot = self.docs.len() as u32;
        let (terms, len) = self.count_terms(text);
        for &(term, tf) in &terms {
            self.postings[term as usize].push(Posting { slot, tf });
        }
        self.docs.push(terms);
        self.doc_len.push(len);
        self.total_len += u64::from(len);
    }

    /// Replaces the document in `slot` with `text`.
    pub fn replace(&mut self, slot: usize, text: &str) {
        self.unlink(slot);
        let (terms, len) = self.count_terms(text);
        for &(term, tf) in &terms {
            self.postings[term as usize].push(Posting {
                slot: slot as u32,
                tf,
            });
        }
        self.docs[slot] = terms;
        self.doc_len[slot] = len;
        self.total_len += u64::from(len);
    }

    /// Removes the document in `slot`; the last document moves into it.
    pub fn swap_remove(&mut self, slot: usize) {
        self.unlink(slot);
        let last = self.docs.len() - 1;
        if slot != last {
            // Re-address the moved document's postings from `last` to `slot`.
            for &(term, _) in &self.docs[last] {
                if let Some(p) = self.postings[term as usize]
                    .iter_mut()
                    .find(|p| p.slot as usize == last)
                {
                    p.slot = slot as u32;
                }
            }
        }
        self.docs.swap_remove(slot);
        self.doc_len.swap_remove(slot);
    }

    /// Adds BM25 scores for `query` to `scores` (indexed by slot, `len()` long),
    /// pushing each slot it touches for the first time onto `touched`.
    pub fn score_into(
        &self,
        query: &QueryTerms,
        params: Bm25Params,
        scores: &mut [f32],
        touched: &mut Vec<u32>,
    ) {
        let avg_len = query.avg_len.max(1.0);
        for (term, idf) in &query.terms {
            let Some(&t) = self.vocab.get(term) else {
                continue;
            };
            for p in &self.postings[t as usize] {
                let tf = p.tf as f32;
                let len_ratio = self.doc_len[p.slot as usize] as f32 / avg_len;
                let norm = params.k1 * (1.0 - params.b + params.b * len_ratio);
                let s = &mut scores[p.slot as usize];
                if *s == 0.0 {
                    touched.push(p.slot);
                }
                *s += idf * tf * (params.k1 + 1.0) / (tf + norm);
            }
        }
    }

    /// Removes `slot`'s postings and length (its `docs` entry is left stale).
    fn unlink(&mut self, slot: usize) {
        for &(term, _) in &self.docs[slot] {
            let list = &mut self.postings[term as usize];
            if let Some(i) = list.iter().position(|p| p.slot as usize == slot) {
                list.swap_remove(i);
            }
        }
        self.total_len -= u64::from(self.doc_len[slot]);
    }

    /// `text`'s distinct term ids with counts, and its length in terms; unknown
    /// terms join the vocabulary.
    fn count_terms(&mut self, text: &str) -> (Vec<(u32, u32)>, u32) {
        let mut counts: Vec<(u32, u32)> = Vec::new();
        let mut len = 0u32;
        text::for_each_term(text, |term| {
            len += 1;
            let id = match self.vocab.get(term) {
                Some(&id) => id,
                None => {
                    let id = self.postings.len() as u32;
                    self.vocab.insert(term.to_owned(), id);
                    self.postings.push(Vec::new());
                    id
                }
            };
            // Memories are short: a linear scan beats hashing here.
            match counts.iter_mut().find(|(t, _)| *t == id) {
                Some((_, n)) => *n += 1,
                None => counts.push((id, 1)),
            }
        });
        (counts, len)
    }
}

impl QueryTerms {
    /// The query's distinct terms with IDF computed over `indexes` together.
    /// Terms no searched document contains are dropped.
    pub fn new<'a>(text: &str, indexes: impl Iterator<Item = &'a KeywordIndex> + Clone) -> Self {
        let docs: usize = indexes.clone().map(KeywordIndex::len).sum();
        let total: u64 = indexes.clone().map(KeywordIndex::total_len).sum();
        let avg_len = if docs == 0 {
            0.0
        } else {
            total as f32 / docs as f32
        };
        let mut distinct = text::terms(text);
        distinct.sort_unstable();
        distinct.dedup();
        let n = docs as f32;
        let terms = distinct
            .into_iter()
            .filter_map(|term| {
                let df = indexes.clone().map(|k| k.df(&term)).sum::<usize>() as f32;
                // The "+1" form of IDF (Lucene's): never negative, even for terms in
                // most documents.
                (df > 0.0).then(|| {
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    (term, idf)
                })
            })
            .collect();
        Self { terms, avg_len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(index: &KeywordIndex, query: &str) -> Vec<f32> {
        let q = QueryTerms::new(query, std::iter::once(index));
        let mut scores = vec![0.0; index.len()];
        let mut touched = Vec::new();
        index.score_into(&q, Bm25Params::default(), &mut scores, &mut touched);
        let mut sorted = touched.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), touched.len(), "each slot touched once");
        scores
    }

    #[test]
    fn rarer_terms_and_shorter_documents_score_higher() {
        let mut k = KeywordIndex::default();
        k.push("my dog is called Rex and he is a very good boy");
        k.push("I walked the dog in the park today with my sister and her dog");
        k.push("Rex likes the park");
        let s = scores(&k, "Rex");
        assert!(s[0] > 0.0 && s[2] > 0.0 && s[1] == 0.0);
        assert!(s[2] > s[0], "shorter document wins: {s:?}");
        let s = scores(&k, "dog rex");
        assert!(s[0] > s[1], "both terms beat one term twice: {s:?}");
    }

    #[test]
    fn replace_and_swap_remove_keep_postings_consistent() {
        let mut k = KeywordIndex::default();
        k.push("apples and pears");
        k.push("bananas");
        k.push("cherries and apples");
        k.replace(1, "kiwis and apples");
        assert_eq!(k.df("banana"), 0);
        assert_eq!(k.df("appl"), 3);
        k.swap_remove(0);
        // Slot 0 now holds the former slot 2.
        assert_eq!(k.len(), 2);
        assert_eq!(k.df("appl"), 2);
        assert_eq!(k.df("pear"), 0);
        let s = scores(&k, "cherries");
        assert!(s[0] > 0.0 && s[1] == 0.0);
        let s = scores(&k, "kiwi");
        assert!(s[1] > 0.0 && s[0] == 0.0);
        assert_eq!(k.total_len(), 4);
        k.swap_remove(1);
        k.swap_remove(0);
        assert_eq!((k.len(), k.total_len(), k.df("appl")), (0, 0, 0));
    }

    #[test]
    fn statistics_span_every_searched_partition() {
        let mut a = KeywordIndex::default();
        a.push("tea");
        let mut b = KeywordIndex::default();
        b.push("tea");
        b.push("coffee");
        let q = QueryTerms::new("tea", [&a, &b].into_iter());
        assert_eq!(q.terms.len(), 1);
        assert!((q.avg_len - 1.0).abs() < 1e-6);
        let idf_two_of_three = (1.0f32 + (3.0 - 2.0 + 0.5) / (2.0 + 0.5)).ln();
        assert!((q.terms[0].1 - idf_two_of_three).abs() < 1e-6);
    }
}
