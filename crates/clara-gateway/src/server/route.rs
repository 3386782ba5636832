//! Each platform's sink in the engine. The engine keeps one sink per platform
//! name, while adapters come and go; a [`PlatformRoute`] is attached once and
//! delivers through the platform's newest live connection. When that one drops,
//! an older one still connected takes over; with none, deliveries fail with one
//! sentence (the send queue logs it) until an adapter connects again.

use super::AdapterHost;
use super::outgoing::AdapterLink;
use async_trait::async_trait;
use clara_core::pacing::Delivery;
use clara_core::port::{OutboundSink, SinkError};
use clara_core::{ConversationRef, Outbound};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// The platforms adapters have connected for.
#[derive(Default)]
pub(crate) struct Routes {
    routes: Mutex<HashMap<String, Arc<PlatformRoute>>>,
}

impl Routes {
    /// Makes `link` the platform's current connection, attaching the platform
    /// to the engine the first time.
    pub(crate) fn join(&self, host: &dyn AdapterHost, platform: &str, link: Arc<AdapterLink>) {
        let (route, is_new) = {
            let mut routes = self.routes.lock();
            match routes.get(platform) {
                Some(route) => (Arc::clone(route), false),
                None => {
                    let route = Arc::new(PlatformRoute::new(platform, link.delivery.clone()));
                    routes.insert(platform.to_owned(), Arc::clone(&route));
                    (route, true)
                }
            }
        };
        route.join(link);
        if is_new {
            host.attach(platform, route);
        }
    }

    /// Forgets a connection that ended.
    pub(crate) fn leave(&self, platform: &str, link_id: &str) {
        let route = self.routes.lock().get(platform).cloned();
        if let Some(route) = route {
            route.leave(link_id);
        }
    }
}

/// One platform as the engine sees it.
pub(crate) struct PlatformRoute {
    platform: String,
    state: Mutex<RouteState>,
}

struct RouteState {
    /// Live connections, oldest first; the last one delivers.
    links: Vec<Arc<AdapterLink>>,
    /// The newest connection's delivery, kept when it leaves.
    delivery: Delivery,
}

impl PlatformRoute {
    fn new(platform: &str, delivery: Delivery) -> Self {
        Self {
            platform: platform.to_owned(),
            state: Mutex::new(RouteState {
                links: Vec::new(),
                delivery,
            }),
        }
    }

    fn join(&self, link: Arc<AdapterLink>) {
        let mut state = self.state.lock();
        state.delivery = link.delivery.clone();
        state.links.push(link);
    }

    fn leave(&self, link_id: &str) {
        let mut state = self.state.lock();
        state.links.retain(|l| l.id != link_id);
        if let Some(current) = state.links.last() {
            state.delivery = current.delivery.clone();
        }
    }

    /// The newest connection that is not closing: one being closed (a missed
    /// pong, say) stops getting calls at once, before it has fully left.
    fn current(&self) -> Option<Arc<AdapterLink>> {
        self.state
            .lock()
            .links
            .iter()
            .rev()
            .find(|l| l.is_live())
            .cloned()
    }
}

#[async_trait]
impl OutboundSink for PlatformRoute {
    fn delivery(&self) -> Delivery {
        match self.current() {
            Some(link) => link.delivery.clone(),
            None => self.state.lock().delivery.clone(),
        }
    }

    async fn deliver(
        &self,
        conversation: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError> {
        let Some(link) = self.current() else {
            return Err(SinkError::Failed(format!(
                "no {} adapter is connected to the gateway",
                self.platform
            )));
        };
        link.deliver(conversation, outbound).await
    }
}
