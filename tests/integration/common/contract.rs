//! Every answer the tests get is checked against the OpenAPI document the app
//! serves (`/openapi.json`), so that a client generated from it works: the
//! operation (method + path template) must list the status (or `default`),
//! and a JSON body must match that status's `application/json` schema, with
//! `$ref`s to `#/components/schemas/...` resolved in the document itself.
//! `TestApp::call`, `TestApp::raw` and `TestApp::send` go through
//! [`Contract::assert`]; the fuzz test collects [`Contract::check`]'s
//! findings instead.
//!
//! The document is fetched once per test process (it is the same for every
//! app: `ApiDoc` is static). Paths outside `/v1/` that it does not describe
//! (`/openapi.json` itself) are not checked; an undocumented `/v1/` path is a
//! violation.

use jsonschema::{Draft, Validator};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

static CONTRACT: OnceCell<Contract> = OnceCell::const_new();

/// The served OpenAPI document, with a validator per (operation, status)
/// built on first use.
pub struct Contract {
    doc: Value,
    /// Path templates split into segments (`{…}` matches any one segment).
    templates: Vec<(String, Vec<String>)>,
    validators: Mutex<HashMap<(String, String, String), Arc<Validator>>>,
}

/// One answer, as the checker needs it.
pub struct Answer<'a> {
    pub method: &'a Method,
    /// The request's path, with or without its query string.
    pub path: &'a str,
    pub status: StatusCode,
    /// The `content-type` header, when there is one.
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// The document served at `base`, fetched once per process.
pub async fn contract(client: &reqwest::Client, base: &str) -> &'static Contract {
    CONTRACT
        .get_or_init(|| async {
            let res = client
                .get(format!("{base}/openapi.json"))
                .send()
                .await
                .expect("GET /openapi.json");
            assert_eq!(res.status(), StatusCode::OK, "GET /openapi.json");
            Contract::new(res.json().await.expect("/openapi.json is JSON"))
        })
        .await
}

impl Contract {
    pub fn new(doc: Value) -> Contract {
        let templates = doc["paths"]
            .as_object()
            .expect("the document has paths")
            .keys()
            .map(|t| (t.clone(), segments(t)))
            .collect();
        Contract {
            doc,
            templates,
            validators: Mutex::default(),
        }
    }

    /// The path template `path` (query string ignored) is an instance of;
    /// a literal segment wins over a parameter (`/v1/shares/revoke` is not
    /// `/v1/shares/{share_id}`), as in the router.
    pub fn template(&self, path: &str) -> Option<&str> {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let got = segments(path);
        self.templates
            .iter()
            .filter(|(_, want)| {
                want.len() == got.len()
                    && want
                        .iter()
                        .zip(&got)
                        .all(|(w, g)| w == g || (w.starts_with('{') && w.ends_with('}')))
            })
            .max_by_key(|(_, want)| want.iter().filter(|w| !w.starts_with('{')).count())
            .map(|(t, _)| t.as_str())
    }

    /// Panic, naming the request, status, error and body, when `answer`
    /// violates the document.
    pub fn assert(&self, answer: &Answer<'_>) {
        if let Err(e) = self.check(answer) {
            panic!("{e}");
        }
    }

    /// Whether `answer` is one the document allows: its status is listed for
    /// its operation, and its JSON body matches that status's schema.
    pub fn check(&self, a: &Answer<'_>) -> Result<(), String> {
        let what = || {
            format!(
                "{} {} answered {}: {}",
                a.method,
                a.path,
                a.status,
                String::from_utf8_lossy(a.body)
            )
        };
        let Some(template) = self.template(a.path) else {
            if a.path.starts_with("/v1/") {
                return Err(format!(
                    "OpenAPI: no path of the document matches: {}",
                    what()
                ));
            }
            return Ok(());
        };
        // HEAD is answered as GET without a body.
        let method = if a.method == Method::HEAD {
            "get".to_string()
        } else {
            a.method.as_str().to_lowercase()
        };
        let Some(op) = self.doc["paths"][template].get(&method) else {
            return Err(format!(
                "OpenAPI: {template} has no {method} operation: {}",
                what()
            ));
        };
        let responses = &op["responses"];
        let code = a.status.as_str();
        let range = format!("{}XX", &code[..1]);
        let Some(key) = [code, range.as_str(), "default"]
            .into_iter()
            .find(|k| responses.get(*k).is_some())
        else {
            return Err(format!(
                "OpenAPI: status {code} is not documented for {method} {template}: {}",
                what()
            ));
        };
        if a.method == Method::HEAD {
            return Ok(());
        }
        let content = &responses[key]["content"];
        let media = a
            .content_type
            .map(|c| c.split(';').next().unwrap_or_default().trim());
        let json = media.is_some_and(|m| m == "application/json" || m.ends_with("+json"));
        let documented = content.as_object().filter(|c| !c.is_empty());
        match (documented, media) {
            // No body, none documented.
            (None, _) if a.body.is_empty() => return Ok(()),
            (None, _) => {
                return Err(format!(
                    "OpenAPI: {method} {template} {key} documents no body, but one came ({}): {}",
                    media.unwrap_or("no content-type"),
                    what()
                ))
            }
            (Some(c), Some(m)) if !c.contains_key(m) && !c.contains_key("*/*") => {
                return Err(format!(
                    "OpenAPI: {method} {template} {key} documents {:?}, not {m}: {}",
                    c.keys().collect::<Vec<_>>(),
                    what()
                ))
            }
            (Some(_), None) if !a.body.is_empty() => {
                return Err(format!(
                    "OpenAPI: a body without a content-type: {}",
                    what()
                ))
            }
            _ => {}
        }
        let Some(schema) = content
            .get("application/json")
            .and_then(|c| c.get("schema"))
        else {
            return Ok(());
        };
        if !json {
            return Err(format!(
                "OpenAPI: {method} {template} {key} documents a JSON body, got {}: {}",
                media.unwrap_or("no content-type"),
                what()
            ));
        }
        let instance: Value = serde_json::from_slice(a.body)
            .map_err(|e| format!("OpenAPI: the body is not JSON ({e}): {}", what()))?;
        let validator = self.validator(template, &method, key, schema)?;
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("  at {:?}: {e}", e.instance_path().as_str()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "OpenAPI: the body does not match the schema of {method} {template} {key}:\n{}\n{}",
                errors.join("\n"),
                what()
            ))
        }
    }

    /// A validator of `schema` with the document's components beside it, so
    /// that `#/components/schemas/...` resolves (OpenAPI 3.1 schemas are
    /// JSON Schema 2020-12).
    fn validator(
        &self,
        template: &str,
        method: &str,
        key: &str,
        schema: &Value,
    ) -> Result<Arc<Validator>, String> {
        let id = (template.to_string(), method.to_string(), key.to_string());
        if let Some(v) = self.validators.lock().unwrap().get(&id) {
            return Ok(v.clone());
        }
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "allOf": [schema],
            "components": self.doc["components"],
        });
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| {
                format!("OpenAPI: the schema of {method} {template} {key} is unusable: {e}")
            })?;
        let validator = Arc::new(validator);
        self.validators
            .lock()
            .unwrap()
            .insert(id, validator.clone());
        Ok(validator)
    }
}

fn segments(path: &str) -> Vec<String> {
    path.trim_end_matches('/')
        .split('/')
        .map(str::to_string)
        .collect()
}
