//! Usage is stored with the reply it belongs to, and adds up per person.

use crate::common::{Place, TestDb, msg, place};
use clara_core::Role;
use clara_store::{ReplyUsage, UsageTotals};

fn usage(p: &Place, input: u32, output: u32, cost: Option<f64>) -> ReplyUsage {
    ReplyUsage {
        user: Some(p.user),
        provider: "openai-compatible".into(),
        model: "m".into(),
        tier: "mid".into(),
        input_tokens: input,
        output_tokens: output,
        cost_usd: cost,
        tool_calls: 1,
    }
}

async fn usage_is_committed_with_its_reply_and_summed_per_person(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "ann").await;
    let mut first = msg(&p, "answer one", 1_000);
    first.role = Role::Assistant;
    first.usage = Some(usage(&p, 100, 20, Some(0.001)));
    let mut second = msg(&p, "answer two", 2_000);
    second.role = Role::Assistant;
    second.usage = Some(usage(&p, 50, 5, None));
    let writer = store.writer();
    writer.append(first.clone()).await.await.unwrap();
    writer.append(second.clone()).await.await.unwrap();

    assert_eq!(
        store.thought_usage(first.thought).await.unwrap(),
        first.usage.clone()
    );
    let totals = store.user_usage(p.user, 0).await.unwrap();
    assert_eq!(
        totals,
        UsageTotals {
            replies: 2,
            input_tokens: 150,
            output_tokens: 25,
            cost_usd: 0.001
        }
    );
    assert_eq!(store.user_usage(p.user, 1_500).await.unwrap().replies, 1);
    let other = place(&store, "bob").await;
    assert_eq!(
        store.user_usage(other.user, 0).await.unwrap(),
        UsageTotals::default()
    );
}

on_both_backends!(usage_is_committed_with_its_reply_and_summed_per_person,);
