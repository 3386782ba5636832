//! The keyword retriever's tokenizer: text in, search terms out.
//!
//! Lowercased, split at anything that is not a letter or digit (Unicode-aware),
//! common English function words dropped, English words stemmed (Porter2, so
//! "graduated" finds "graduate"). Scripts written without spaces (Han, kana) give
//! one term per character, so Chinese and Japanese still match by their words'
//! characters instead of not at all.
//!
//! Memories and queries go through the same function, which is all BM25 needs.

use rust_stemmers::{Algorithm, Stemmer};
use std::sync::LazyLock;

/// The English stemmer; a function pointer, built once.
static STEMMER: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));

/// Words too common to say anything about relevance, plus the fragments that
/// splitting at apostrophes leaves ("I'm" → "i", "m"). Sorted, for binary search.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "d",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "ll",
    "m",
    "me",
    "might",
    "more",
    "most",
    "must",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "re",
    "s",
    "same",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "ve",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Whether `word` (lowercase) is a stopword.
fn is_stopword(word: &str) -> bool {
    STOPWORDS.binary_search(&word).is_ok()
}

/// Characters of scripts written without spaces between words: each is a term.
fn is_unspaced_script(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'   // Hiragana, Katakana
        | '\u{3400}'..='\u{4DBF}' // CJK Extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK Unified Ideographs
        | '\u{F900}'..='\u{FAFF}' // CJK Compatibility Ideographs
        | '\u{20000}'..='\u{2FA1F}' // CJK Extensions B–F, compatibility supplement
    )
}

/// Calls `emit` with each search term of `text`, in order (repeats included, so
/// callers can count term frequencies).
pub fn for_each_term(text: &str, mut emit: impl FnMut(&str)) {
    let mut word = String::new();
    let flush = |word: &mut String, emit: &mut dyn FnMut(&str)| {
        if !word.is_empty() && !is_stopword(word) {
            // Stemming non-ASCII words with the English stemmer would mangle them.
            if word.len() > 3 && word.is_ascii() {
                emit(&STEMMER.stem(word));
            } else {
                emit(word);
            }
        }
        word.clear();
    };
    for c in text.chars() {
        if is_unspaced_script(c) {
            flush(&mut word, &mut emit);
            let mut buf = [0u8; 4];
            emit(c.encode_utf8(&mut buf));
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else {
            flush(&mut word, &mut emit);
        }
    }
    flush(&mut word, &mut emit);
}

/// The search terms of `text`, in order.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, |t| out.push(t.to_owned()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn lowercases_splits_drops_stopwords_and_stems() {
        assert_eq!(
            terms("I'm graduating; she GRADUATED with a degree in Business!"),
            ["graduat", "graduat", "degre", "busi"]
        );
    }

    #[test]
    fn keeps_numbers_and_short_words() {
        assert_eq!(terms("PB 25:50 in a 5K"), ["pb", "25", "50", "5k"]);
    }

    #[test]
    fn unicode_letters_are_words_and_unspaced_scripts_split_per_character() {
        assert_eq!(terms("Café Müller"), ["café", "müller"]);
        assert_eq!(terms("東京タワー"), ["東", "京", "タ", "ワ", "ー"]);
        assert_eq!(terms("Привет, мир"), ["привет", "мир"]);
    }

    #[test]
    fn empty_and_punctuation_only_text_has_no_terms() {
        assert!(terms("").is_empty());
        assert!(terms(" ,.;!? ").is_empty());
        assert!(terms("the and of").is_empty());
    }
}
