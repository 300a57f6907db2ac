//! Webhooks: events are batched per app, signed with signature v3 and
//! delivered through the guarded client, retried with back-off.

use super::*;

impl HubSpotSim {
    pub(super) fn dispatch(&self, events: Vec<Value>) {
        if events.is_empty() {
            return;
        }
        let targets: Vec<(String, String, WebhookSettings)> = {
            let state = self.lock();
            state
                .apps
                .values()
                .filter_map(|app| {
                    app.webhook
                        .clone()
                        .map(|w| (app.secret.clone(), app.app_id.to_string(), w))
                })
                .collect()
        };
        for (secret, app_id, settings) in targets {
            let batch: Vec<Value> = events
                .iter()
                .filter(|e| {
                    e["subscriptionType"]
                        .as_str()
                        .is_some_and(|t| settings.subscriptions.iter().any(|s| s == t))
                })
                .cloned()
                .map(|mut e| {
                    e["appId"] = json!(app_id.parse::<u64>().unwrap_or(0));
                    e
                })
                .collect();
            if batch.is_empty() {
                continue;
            }
            let sim = self.clone();
            tokio::spawn(async move { sim.deliver(secret, settings, batch).await });
        }
    }

    async fn deliver(&self, secret: String, settings: WebhookSettings, mut batch: Vec<Value>) {
        for attempt in 1..=settings.max_attempts.max(1) {
            for e in &mut batch {
                e["attemptNumber"] = json!(attempt - 1);
            }
            let body = serde_json::to_vec(&batch).unwrap_or_default();
            let timestamp = Utc::now().timestamp_millis();
            let signature = sign_v3(&secret, "POST", &settings.target_url, &body, timestamp);
            let outcome = crate::util::post_webhook(
                &self.http,
                &settings.target_url,
                &[
                    (SIGNATURE_HEADER, signature),
                    (TIMESTAMP_HEADER, timestamp.to_string()),
                ],
                body,
            )
            .await;
            let refused = outcome.is_none();
            let status = outcome.unwrap_or(0);
            {
                let mut state = self.lock();
                if state.deliveries.len() >= crate::util::MAX_DELIVERIES_KEPT {
                    state.deliveries.remove(0);
                }
                state.deliveries.push(DeliveryRecord {
                    url: settings.target_url.clone(),
                    attempt,
                    status,
                    events: batch.len(),
                });
            }
            // A target the network policy refuses is not retried.
            if refused
                || (200..300).contains(&status)
                || matches!(status, 400 | 401 | 403 | 404 | 405)
            {
                return;
            }
            let delay = settings
                .base_delay_ms
                .saturating_mul(1 << (attempt - 1).min(10));
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
}
