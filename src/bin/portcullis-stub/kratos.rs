//! The Ory Kratos stand-in: `/sessions/whoami` with a fixed set of sessions, plus the two
//! health endpoints. Every response is rendered at start-up, so responding to a request
//! takes a header scan, a hash lookup and a copy.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::response::{Prerendered, RequestHead, Responder, ResponseWriter};
use crate::whoami::{
    aal2_required_body, session_body, session_credential, SessionFields, CACHE_CONTROL,
    HEALTH_BODY, IDENTITY_ID_HEADER, NOT_FOUND_BODY, UNAUTHORIZED_BODY, WHOAMI_PATH,
};

/// One session of the stand-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    /// Session token, as sent in `X-Session-Token`, the session cookie or a bearer token.
    pub token: String,
    /// Identity id returned for the token.
    pub identity_id: String,
    /// E-mail trait of the identity.
    pub email: String,
}

/// Session validity window shared by all sessions.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    /// `issued_at` and `authenticated_at`.
    pub issued_at: SystemTime,
    /// `expires_at`.
    pub expires_at: SystemTime,
}

/// Serves whoami responses rendered at start-up.
pub struct KratosResponder {
    sessions: HashMap<Box<[u8]>, Prerendered>,
    aal2_token: Box<[u8]>,
    aal2_required: Prerendered,
    unauthorized: Prerendered,
    not_found: Prerendered,
    health: Prerendered,
}

impl KratosResponder {
    /// Renders the responses for `sessions`. `public_url` is the Kratos public base URL
    /// without a trailing slash, used in `schema_url` and the aal2 redirect.
    pub fn new(
        sessions: &[SessionSpec],
        aal2_token: &str,
        lifetime: Lifetime,
        public_url: &str,
    ) -> Self {
        let json = ("Content-Type", "application/json");
        let no_store = ("Cache-Control", CACHE_CONTROL);

        let sessions = sessions
            .iter()
            .map(|session| {
                let body = session_body(&SessionFields {
                    token: &session.token,
                    identity_id: &session.identity_id,
                    email: &session.email,
                    issued_at: lifetime.issued_at,
                    expires_at: lifetime.expires_at,
                    public_url,
                });
                let headers = [
                    json,
                    no_store,
                    (IDENTITY_ID_HEADER, session.identity_id.as_str()),
                ];
                let response = Prerendered::new("200 OK", &headers, body.as_bytes());
                (Box::from(session.token.as_bytes()), response)
            })
            .collect();

        let aal2_body = aal2_required_body(public_url);
        Self {
            sessions,
            aal2_token: Box::from(aal2_token.as_bytes()),
            aal2_required: Prerendered::new(
                "403 Forbidden",
                &[json, no_store],
                aal2_body.as_bytes(),
            ),
            unauthorized: Prerendered::new(
                "401 Unauthorized",
                &[json, no_store],
                UNAUTHORIZED_BODY.as_bytes(),
            ),
            not_found: Prerendered::new("404 Not Found", &[json], NOT_FOUND_BODY.as_bytes()),
            health: Prerendered::new("200 OK", &[json], HEALTH_BODY.as_bytes()),
        }
    }

    /// Picks the response for a whoami request.
    fn whoami(&self, request: &RequestHead<'_>) -> &Prerendered {
        let headers = request
            .headers
            .iter()
            .map(|header| (header.name, header.value));
        let Some(token) = session_credential(headers) else {
            return &self.unauthorized;
        };
        if let Some(session) = self.sessions.get(token) {
            return session;
        }
        if token == &*self.aal2_token {
            return &self.aal2_required;
        }
        &self.unauthorized
    }
}

impl Responder for KratosResponder {
    fn respond(&self, request: &RequestHead<'_>, writer: &mut ResponseWriter<'_>) {
        // Kratos registers whoami for every method; the query (for example `tokenize_as`)
        // does not change the response here.
        let path = request.target.split('?').next().unwrap_or_default();
        let response = match path {
            WHOAMI_PATH => self.whoami(request),
            "/health/alive" | "/health/ready" => &self.health,
            _ => &self.not_found,
        };
        writer.prerendered(response);
    }
}
