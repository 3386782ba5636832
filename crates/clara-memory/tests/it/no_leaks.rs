//! The rule that must never break: a recall returns only the asking person's
//! memories (and their project's), and in a group only what may be shared.

use crate::support::{ScriptedLlm, origin, rook_with};
use clara_core::{ChannelKind, MemoryKind, Scope, UserId};
use clara_memory::RecallRequest;
use clara_store::Store;
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "tea", "coffee", "paris", "lyon", "nurse", "cello", "dog", "cat", "marathon", "garden",
    "pregnant", "salary", "password", "birthday", "allergy", "sister",
];

fn sentence() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 1..5).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_query_returns_another_persons_memory(
        memories in prop::collection::vec((0usize..4, any::<bool>(), sentence()), 1..40),
        queries in prop::collection::vec((0usize..4, any::<bool>(), sentence()), 1..12),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let rook = rook_with(Store::open_in_memory().await.unwrap(), ScriptedLlm::new(&[])).await;
            let users: Vec<UserId> = (0..4).map(|_| UserId::new()).collect();
            let channel = |dm: bool| if dm { ChannelKind::Direct } else { ChannelKind::Group };
            for (who, dm, text) in &memories {
                let o = origin(users[*who], channel(*dm));
                rook.remember(Scope::User(users[*who]), MemoryKind::Fact, text, &o, "test", "test")
                    .await
                    .unwrap();
            }
            for (who, dm, text) in &queries {
                let request = RecallRequest {
                    user: users[*who],
                    project: None,
                    channel: channel(*dm),
                    text,
                };
                let recalled = rook.recall(&request).await.unwrap();
                // Not vacuous: a memory saying exactly the query, visible here, is found.
                let visible_twin = memories
                    .iter()
                    .any(|(w, m_dm, t)| w == who && t == text && (*dm || !*m_dm));
                if visible_twin {
                    prop_assert!(recalled.iter().any(|r| r.memory.text == *text));
                }
                for recalled in recalled {
                    prop_assert_eq!(recalled.memory.scope, Scope::User(users[*who]));
                    if !*dm {
                        prop_assert!(recalled.memory.shareable, "a private memory reached a group");
                    }
                }
            }
            Ok(())
        })?;
    }
}
