//! Agent presence for messaging, from Zendesk's Agent Availability API (a Support API, not a
//! Sunshine Conversations one): `GET /api/v2/agent_availabilities` filtered on
//! `channel_status = messaging:online`, a JSON:API list of the agents in that state. Asked
//! only when the provider's secret carries Support API credentials (`supportEmail` and
//! `supportApiToken`); without them presence stays unknown and Zendesk's routing decides.

use serde::Deserialize;

use crate::delivery::DeliveryError;
use crate::providers::kit::http::{ApiClient, Auth};
use crate::providers::kit::settings as kit_settings;
use crate::providers::{AgentAvailability, ProviderSetupError};
use crate::secrets::Secret;

const PATH: &str = "/api/v2/agent_availabilities";
/// The channel and state asked for (`filter[channel_status]`, `<channel>:<status>`).
const MESSAGING_ONLINE: &str = "messaging:online";

/// The Support API client that asks for agents online on messaging.
pub(super) struct Presence {
    api: ApiClient,
}

/// The JSON:API answer; one record is enough to know that someone is online.
#[derive(Deserialize)]
struct Availabilities {
    #[serde(default)]
    data: Vec<serde_json::Value>,
}

impl Presence {
    /// The client, when the secret has Support API credentials (an agent's email and an API
    /// token, sent as `{email}/token:{token}` in HTTP Basic, Zendesk's API-token scheme) and
    /// the Support host is known (`supportBaseUrl`, else `https://{subdomain}.zendesk.com`).
    pub(super) fn new(
        secret: &Secret,
        subdomain: Option<&str>,
        support_base_url: Option<String>,
        http: reqwest::Client,
    ) -> Result<Option<Self>, ProviderSetupError> {
        let field = |name: &str| secret.field(name).ok().filter(|v| !v.trim().is_empty());
        let (email, token) = match (field("supportEmail"), field("supportApiToken")) {
            (Some(email), Some(token)) => (email, token),
            (None, None) => return Ok(None),
            _ => {
                return Err(ProviderSetupError::Config(
                    "the provider's secret needs both supportEmail and supportApiToken (or neither)".into(),
                ));
            }
        };
        let base = match (support_base_url, subdomain) {
            (Some(url), _) => kit_settings::base_url("supportBaseUrl", &url)?,
            (None, Some(sub)) => format!("https://{sub}.zendesk.com"),
            (None, None) => {
                return Err(ProviderSetupError::setting(
                    "supportBaseUrl",
                    "is needed to ask agent availability without a subdomain",
                ));
            }
        };
        let auth = Auth::Basic {
            user: format!("{email}/token"),
            password: token.to_owned(),
        };
        Ok(Some(Presence {
            api: ApiClient::new(http, base, auth),
        }))
    }

    /// Online when at least one agent is online on messaging, account-wide: the API filters
    /// by channel status, not by group, and handover's queues are not Zendesk groups.
    pub(super) async fn messaging(&self) -> Result<AgentAvailability, DeliveryError> {
        let query = [("filter[channel_status]", MESSAGING_ONLINE), ("page[size]", "1")];
        let answer: Availabilities = self
            .api
            .get(PATH, &query)
            .await?
            .json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("Zendesk answer to GET {PATH}: {e}")))?;
        Ok(if answer.data.is_empty() {
            AgentAvailability::NoneOnline
        } else {
            AgentAvailability::Online
        })
    }
}
