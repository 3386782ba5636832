//! Counting tokens, to keep a prompt inside a model's budget.

/// Counts the tokens a text costs a model.
pub trait TokenCounter: Send + Sync {
    /// Tokens of `text` as message content.
    fn count(&self, text: &str) -> usize;

    /// Tokens of a whole chat message: its content plus the per-message framing
    /// chat formats add (role markers, separators).
    fn count_message(&self, content: &str) -> usize {
        self.count(content) + 4
    }
}

/// A fast estimate that errs on the high side: about one token per 3.5 bytes of
/// English, one per character for scripts without spaces.
///
/// It never undercounts real BPE tokenizers by much, which is what a budget needs:
/// a prompt trimmed by this estimate fits.
#[derive(Clone, Copy, Debug, Default)]
pub struct EstimatedTokens;

impl TokenCounter for EstimatedTokens {
    fn count(&self, text: &str) -> usize {
        let mut ascii = 0usize;
        let mut other = 0usize;
        for c in text.chars() {
            if c.is_ascii() { ascii += 1 } else { other += 1 }
        }
        // 2/7 ≈ 1/3.5, rounded up.
        (ascii * 2).div_ceil(7) + other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_in_the_right_range() {
        let e = EstimatedTokens;
        assert_eq!(e.count(""), 0);
        // "The capital of France is Paris." is 7 tokens in cl100k.
        let n = e.count("The capital of France is Paris.");
        assert!((7..=10).contains(&n), "{n}");
        assert_eq!(e.count("日本語"), 3);
        assert_eq!(e.count_message(""), 4);
    }
}
