//! Listeners and the other top-level settings of `oathkeeper.yml`: `serve.proxy` and
//! `serve.api` become `[proxy]` and `[api]`, and every key without a portcullis equivalent is
//! reported.

use serde_json::{Map, Value};

use super::{Converter, DEFAULT_API_PORT, DEFAULT_PROXY_PORT};
use crate::config::duration::parse_duration;
use crate::import::write::{Document, TlsListener};

impl Converter<'_> {
    pub(super) fn convert_top_level_keys(&mut self) {
        let keys: Vec<String> = self.input.config.keys().cloned().collect();
        for key in keys {
            match key.as_str() {
                "serve" | "access_rules" | "authenticators" | "authorizers" | "mutators" | "errors" => {}
                "log" => self.note(
                    "log is not converted: portcullis logs to stderr, and --log-level or RUST_LOG sets the level".to_owned(),
                ),
                other => self.note(format!("{other} has no portcullis equivalent and is not converted")),
            }
        }
        let access_keys: Vec<String> = match self.config_value(&["access_rules"]) {
            Some(Value::Object(section)) => section.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for key in access_keys {
            if key != "repositories" && key != "matching_strategy" {
                self.note(format!("access_rules.{key} has no portcullis equivalent and is not converted"));
            }
        }
    }

    pub(super) fn convert_serve(&mut self, document: &mut Document) {
        let serve_keys: Vec<String> = match self.config_value(&["serve"]) {
            Some(Value::Object(serve)) => serve.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for key in serve_keys {
            match key.as_str() {
                "proxy" | "api" => {}
                "prometheus" => self.note("serve.prometheus is not converted: portcullis has no metrics endpoint".to_owned()),
                other => self.note(format!("serve.{other} has no portcullis equivalent and is not converted")),
            }
        }

        let proxy = self.listen_address("proxy", DEFAULT_PROXY_PORT);
        match self.tls_files("proxy") {
            TlsSetting::None => document.proxy_listen.push(proxy),
            TlsSetting::Files { certificate, key } => {
                document.proxy_tls = Some(TlsListener { listen: vec![proxy], certificate, key });
            }
            TlsSetting::Unconvertible(reason) => self.note(format!(
                "serve.proxy.tls is not converted: {reason}; the output has no proxy listener until [proxy.tls] names PEM files"
            )),
        }

        let api = self.listen_address("api", DEFAULT_API_PORT);
        match self.tls_files("api") {
            TlsSetting::None => document.api_listen.push(api),
            TlsSetting::Files { .. } | TlsSetting::Unconvertible(_) => self.note(
                "serve.api.tls is not converted: the portcullis API listener has no TLS, so the output has no [api] listener".to_owned(),
            ),
        }

        for server in ["proxy", "api"] {
            self.convert_server_options(server, document);
        }
    }

    /// Returns `host:port` for `serve.<server>`; Oathkeeper listens on every interface when
    /// `host` is empty.
    fn listen_address(&mut self, server: &str, default_port: u16) -> String {
        let port = match self.config_value(&["serve", server, "port"]) {
            None => default_port,
            Some(value) => match value.as_u64().and_then(|port| u16::try_from(port).ok()).filter(|&port| port > 0) {
                Some(port) => port,
                None => {
                    self.note(format!("serve.{server}.port {value} is not a port number; {default_port} is used"));
                    default_port
                }
            },
        };
        let host = match self.config_value(&["serve", server, "host"]) {
            Some(Value::String(host)) if !host.is_empty() => host.clone(),
            _ => {
                if server == "api" {
                    // The decision API trusts X-Forwarded-* headers, so it must not be
                    // reachable by clients; say so rather than copy the default silently.
                    self.note(
                        "serve.api.host is empty, so the API listener binds 0.0.0.0 as in Oathkeeper; the decision API trusts X-Forwarded-* headers, so restrict it to the proxy in front (for example 127.0.0.1)".to_owned(),
                    );
                }
                "0.0.0.0".to_owned()
            }
        };
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }

    fn tls_files(&self, server: &str) -> TlsSetting {
        let Some(tls) = self.config_value(&["serve", server, "tls"]) else { return TlsSetting::None };
        let path = |part: &str| tls.get(part).and_then(|item| item.get("path")).and_then(Value::as_str).map(str::to_owned);
        let base64 = |part: &str| tls.get(part).and_then(|item| item.get("base64")).is_some_and(|value| !value.is_null());
        match (path("cert"), path("key")) {
            (Some(certificate), Some(key)) => TlsSetting::Files { certificate, key },
            _ if base64("cert") || base64("key") => {
                TlsSetting::Unconvertible("certificates given as base64 are not read; write them to PEM files".to_owned())
            }
            _ if tls.as_object().is_some_and(Map::is_empty) => TlsSetting::None,
            _ => TlsSetting::Unconvertible("cert.path and key.path are not both set".to_owned()),
        }
    }

    fn convert_server_options(&mut self, server: &str, document: &mut Document) {
        let keys: Vec<String> = match self.config_value(&["serve", server]) {
            Some(Value::Object(section)) => section.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for key in keys {
            match key.as_str() {
                "port" | "host" | "tls" => {}
                "timeout" => self.convert_timeouts(server, document),
                "cors" => {
                    let enabled = self.config_value(&["serve", server, "cors", "enabled"]).and_then(Value::as_bool).unwrap_or(false);
                    if enabled {
                        self.note(format!("serve.{server}.cors is not converted: portcullis has no CORS handling, so preflight requests reach the rules"));
                    }
                }
                "trust_forwarded_headers" if server == "proxy" => {
                    if self.config_value(&["serve", "proxy", key.as_str()]).and_then(Value::as_bool).unwrap_or(false) {
                        self.note(
                            "serve.proxy.trust_forwarded_headers is not converted: portcullis keeps X-Forwarded-* headers only from the CIDRs in [proxy] trusted_proxies; list your load balancers there"
                                .to_owned(),
                        );
                    }
                }
                other => self.note(format!("serve.{server}.{other} has no portcullis equivalent and is not converted")),
            }
        }
    }

    fn convert_timeouts(&mut self, server: &str, document: &mut Document) {
        let keys: Vec<(String, Value)> = match self.config_value(&["serve", server, "timeout"]) {
            Some(Value::Object(timeouts)) => timeouts.iter().map(|(key, value)| (key.clone(), value.clone())).collect(),
            _ => Vec::new(),
        };
        for (key, value) in keys {
            match (server, key.as_str(), value.as_str()) {
                ("proxy", "idle", Some(text)) if parse_duration(text).is_ok() => document.keepalive_timeout = Some(text.to_owned()),
                _ => self.note(format!(
                    "serve.{server}.timeout.{key} is not converted: portcullis times requests with [limits] head_timeout, body_timeout and send_timeout instead"
                )),
            }
        }
    }
}

enum TlsSetting {
    None,
    Files { certificate: String, key: String },
    Unconvertible(String),
}
