//! Who a request speaks for, and what of Clara's that person may see.
//!
//! Everyone reached over HTTP lives on the `web` platform: the web page's person
//! (the operator, id `owner` unless configured) and whoever an API request's
//! `user` field names. Each person has two conversations — the web page's and
//! the API's — and sees only their own memories, their conversations' projects'
//! memories, and their own sessions.

use crate::http::errors::ApiError;
use clara_core::{Author, ChannelKind, ConversationId, ConversationRef, Scope, UserId};
use clara_store::Store;

/// The platform name of everything served over HTTP.
pub(crate) const PLATFORM: &str = "web";

/// The longest `user` an API request may name.
const MAX_USER_CHARS: usize = 128;

/// A person, as the HTTP face addresses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Person {
    /// Their id on the `web` platform.
    pub(crate) id: String,
    /// The name Clara calls them.
    pub(crate) name: String,
}

impl Person {
    /// The author of their messages.
    pub(crate) fn author(&self) -> Author {
        Author {
            platform_user_id: self.id.clone(),
            display_name: self.name.clone(),
        }
    }

    /// Their conversation on the web page.
    pub(crate) fn page(&self) -> ConversationRef {
        conversation(format!("page:{}", self.id))
    }

    /// Their conversation through `/v1/chat/completions`.
    pub(crate) fn api(&self) -> ConversationRef {
        conversation(format!("api:{}", self.id))
    }

    /// The person an API request's `user` names (they are called by it, too).
    pub(crate) fn named(user: &str) -> Result<Person, ApiError> {
        let user = user.trim();
        if user.is_empty() || user.chars().count() > MAX_USER_CHARS {
            return Err(ApiError::invalid(format!(
                "`user` must name the person in 1 to {MAX_USER_CHARS} characters."
            ))
            .with_param("user"));
        }
        if user.chars().any(char::is_control) {
            return Err(
                ApiError::invalid("`user` must not contain control characters.").with_param("user"),
            );
        }
        Ok(Person {
            id: user.to_owned(),
            name: user.to_owned(),
        })
    }
}

fn conversation(channel: String) -> ConversationRef {
    ConversationRef {
        platform: PLATFORM.to_owned(),
        channel,
        kind: ChannelKind::Direct,
    }
}

/// What a person may see: their user (once Clara has met them), their
/// conversations, and the memory scopes those give them.
#[derive(Clone, Debug)]
pub(crate) struct Reach {
    pub(crate) user: Option<UserId>,
    pub(crate) conversations: Vec<ConversationId>,
    pub(crate) scopes: Vec<Scope>,
}

impl Reach {
    /// Looks `person` up (never creating a user: a person Clara has not met has
    /// no memories).
    pub(crate) async fn of(store: &Store, person: &Person) -> Result<Reach, ApiError> {
        let fail = |e: clara_store::StoreError| ApiError::internal("look the person up", &e);
        let user = store.find_user(PLATFORM, &person.id).await.map_err(fail)?;
        let mut conversations = Vec::new();
        let mut scopes: Vec<Scope> = user.into_iter().map(Scope::User).collect();
        for conv in [person.page(), person.api()] {
            let id = store.resolve_conversation(&conv).await.map_err(fail)?;
            conversations.push(id);
            if let Some(project) = store.conversation_project(id).await.map_err(fail)? {
                let scope = Scope::Project(project);
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
        }
        Ok(Reach {
            user,
            conversations,
            scopes,
        })
    }

    /// Whether a memory of `scope` is theirs to see and change.
    pub(crate) fn covers(&self, scope: &Scope) -> bool {
        self.scopes.contains(scope)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_person_has_a_page_and_an_api_conversation() {
        let ann = Person::named("ann").unwrap();
        assert_eq!(ann.page().channel, "page:ann");
        assert_eq!(ann.api().channel, "api:ann");
        assert_eq!(ann.page().platform, "web");
        assert_eq!(ann.page().kind, ChannelKind::Direct);
        assert_ne!(ann.page(), Person::named("bob").unwrap().page());
    }

    #[test]
    fn user_names_are_checked() {
        assert_eq!(Person::named("  ann ").unwrap().id, "ann");
        for bad in ["", "   ", "a\nb", &"x".repeat(200)] {
            let e = Person::named(bad).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("user"));
        }
    }
}
