//! The registry: every connector Ferry has, by key.

use crate::connector::Connector;
use ferry_core::catalog::ConnectorKey;
use std::collections::HashMap;
use std::sync::Arc;

/// Every connector, by key.
#[derive(Clone)]
pub struct Registry {
    connectors: HashMap<ConnectorKey, Arc<dyn Connector>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// The registry of Ferry's connectors.
    pub fn new() -> Self {
        let list: Vec<Arc<dyn Connector>> = vec![
            Arc::new(crate::hubspot::HubSpot),
            Arc::new(crate::verification::Verification),
            Arc::new(crate::webhook::HttpApi),
            Arc::new(crate::webhook::InboundWebhook),
            Arc::new(crate::webhook::Smtp),
        ];
        Self {
            connectors: list.into_iter().map(|c| (c.def().key, c)).collect(),
        }
    }

    /// The connector for `key`.
    pub fn get(&self, key: ConnectorKey) -> Option<Arc<dyn Connector>> {
        self.connectors.get(&key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connector_is_registered() {
        let r = Registry::new();
        for key in ConnectorKey::ALL {
            assert_eq!(r.get(key).map(|c| c.def().key), Some(key));
        }
    }
}
