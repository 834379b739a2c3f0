//! The served OpenAPI document (`GET /openapi.json`): utoipa's document of
//! [`super::ApiDoc`] (with the modifiers here: the bearer scheme and the
//! statuses any operation can answer), made clean for client generators
//! (issue #22):
//! - public operations say `security: []` (utoipa writes `[{}]`, which
//!   generators read as "a token is required");
//! - request and response bodies that are bytes, not JSON, are typed
//!   `{type: string, format: binary}`, so a generated client sends and
//!   returns bytes;
//! - an inline schema equal to a named one (the item schema of a list
//!   wrapper) is a `$ref` to it, so generators make one model, not two;
//! - each inline variant of a `oneOf`/`anyOf` has a title named after its
//!   serde tag (`ScopeCase`, `ScopeFolders`) or its fields, instead of the
//!   generators' `ScopeType0`.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::LazyLock;

use super::error::error_response;

pub(super) struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Statuses any API operation can answer, listed on every operation with the
/// error schema: 401 (a missing or unknown token, where a token is needed),
/// 429 (the token's rate), 500 and 503 (a dependency down, or the request's
/// deadline); with a request body also 413 and 422.
pub(super) struct ErrorStatuses;

impl utoipa::Modify for ErrorStatuses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let anonymous = op.security.as_ref().is_some_and(|s| {
                    s.iter()
                        .all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
                });
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description).into());
                };
                if !anonymous {
                    add("401", "missing or unknown bearer token");
                }
                add("429", "too many requests for this token (Retry-After)");
                add("500", "internal error");
                add(
                    "503",
                    "a dependency is unavailable, or the request took too long",
                );
                if op.request_body.is_some() {
                    add("413", "the body is larger than the limit");
                    add("422", "the body is invalid (the message names the field)");
                }
            }
        }
    }
}

/// The document, built once per process.
pub fn document() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(|| {
        use utoipa::OpenApi;
        let mut doc = serde_json::to_value(super::ApiDoc::openapi())
            .expect("the OpenAPI document serializes");
        clean(&mut doc);
        doc
    });
    &DOC
}

fn clean(doc: &mut Value) {
    public_security(doc);
    binary_bodies(doc);
    refer_to_named(doc);
    title_variants(doc);
}

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

fn operations(doc: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| {
            item.iter_mut()
                .filter(|(m, _)| METHODS.contains(&m.as_str()))
                .filter_map(|(_, op)| op.as_object_mut())
        })
}

/// `security: [{}]` (anyone) becomes `security: []`.
fn public_security(doc: &mut Value) {
    for op in operations(doc) {
        if let Some(Value::Array(reqs)) = op.get_mut("security") {
            if !reqs.is_empty() && reqs.iter().all(|r| r == &Value::Object(Map::new())) {
                reqs.clear();
            }
        }
    }
}

/// Bodies that are not JSON (nor the metrics' text): bytes.
fn binary_bodies(doc: &mut Value) {
    fn fix(content: Option<&mut Value>) {
        let Some(Value::Object(content)) = content else {
            return;
        };
        for (media, body) in content.iter_mut() {
            if media.contains("json") || media.starts_with("text/") {
                continue;
            }
            let typed = body
                .get("schema")
                .is_some_and(|s| s.get("$ref").is_some() || s.get("format").is_some());
            if !typed {
                body["schema"] = serde_json::json!({ "type": "string", "format": "binary" });
            }
        }
    }
    for op in operations(doc) {
        if let Some(body) = op.get_mut("requestBody") {
            fix(body.get_mut("content"));
        }
        if let Some(Value::Object(responses)) = op.get_mut("responses") {
            for r in responses.values_mut() {
                fix(r.get_mut("content"));
            }
        }
    }
}

/// Replace every inline schema equal to a named component by a `$ref`.
fn refer_to_named(doc: &mut Value) {
    let named: HashMap<String, String> = doc["components"]["schemas"]
        .as_object()
        .map(|schemas| {
            schemas
                .iter()
                .filter(|(_, s)| s.get("properties").is_some() || s.get("oneOf").is_some())
                .map(|(name, s)| (s.to_string(), name.clone()))
                .collect()
        })
        .unwrap_or_default();
    fn walk(v: &mut Value, named: &HashMap<String, String>, root: bool) {
        if !root {
            if let Some(name) = named.get(&v.to_string()) {
                *v = serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
                return;
            }
        }
        match v {
            Value::Object(m) => m.values_mut().for_each(|c| walk(c, named, false)),
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, named, false)),
            _ => {}
        }
    }
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        paths.values_mut().for_each(|p| walk(p, &named, false));
    }
    if let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") {
        // A named schema's own root stays; what it nests is replaced.
        schemas.values_mut().for_each(|s| walk(s, &named, true));
    }
}

/// Titles for the inline variants of `oneOf`/`anyOf` in named schemas.
fn title_variants(doc: &mut Value) {
    let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") else {
        return;
    };
    fn pascal(s: &str) -> String {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }
    /// The value of the variant's serde tag: a property whose schema is an
    /// enum of one value.
    fn tag(variant: &Value) -> Option<String> {
        variant["properties"].as_object()?.values().find_map(|p| {
            let values = p["enum"].as_array()?;
            (values.len() == 1).then(|| values[0].as_str().map(str::to_string))?
        })
    }
    fn name_variants(owner: &str, v: &mut Value) {
        for key in ["oneOf", "anyOf"] {
            let Some(Value::Array(variants)) = v.get_mut(key) else {
                continue;
            };
            let mut used = std::collections::HashSet::new();
            for (i, variant) in variants.iter_mut().enumerate() {
                let inline_object = variant.get("$ref").is_none()
                    && variant.get("title").is_none()
                    && (variant.get("properties").is_some()
                        || variant.get("type") == Some(&Value::from("object")));
                if !inline_object {
                    continue;
                }
                let by_fields = || {
                    let mut required: Vec<&str> = variant["required"]
                        .as_array()
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    required.sort();
                    required.join("_")
                };
                let mut title =
                    owner.to_string() + &pascal(&tag(variant).unwrap_or_else(by_fields));
                if title == owner || !used.insert(title.clone()) {
                    title = format!("{owner}Variant{}", i + 1);
                    used.insert(title.clone());
                }
                variant["title"] = Value::from(title);
            }
        }
    }
    fn walk(owner: &str, v: &mut Value) {
        name_variants(owner, v);
        if let Some(Value::Object(props)) = v.get_mut("properties") {
            for (field, p) in props.iter_mut() {
                walk(&format!("{owner}{}", pascal(field)), p);
            }
        }
        if let Some(items) = v.get_mut("items") {
            walk(owner, items);
        }
    }
    for (name, schema) in schemas.iter_mut() {
        walk(name, schema);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // #22: the cleaned document has no `[{}]` security, no untyped byte
    // body, no inline copy of a named schema, and no untitled inline variant.
    #[test]
    fn the_served_document_is_clean_for_generators() {
        let doc = document();
        let text = doc.to_string();
        assert!(!text.contains(r#""security":[{}]"#));
        assert_eq!(
            doc["paths"]["/v1/downloads/{token}"]["get"]["security"],
            serde_json::json!([])
        );
        let put = &doc["paths"]["/v1/evidence/{evidence_id}/content"]["put"];
        assert_eq!(
            put["requestBody"]["content"]["application/octet-stream"]["schema"]["format"],
            "binary"
        );
        let named: Vec<String> = doc["components"]["schemas"]
            .as_object()
            .unwrap()
            .values()
            .filter(|s| s.get("properties").is_some())
            .map(|s| s.to_string())
            .collect();
        fn inline_copies(v: &Value, named: &[String], root: bool, found: &mut usize) {
            if !root && named.contains(&v.to_string()) {
                *found += 1;
            }
            match v {
                Value::Object(m) => m
                    .values()
                    .for_each(|c| inline_copies(c, named, false, found)),
                Value::Array(a) => a.iter().for_each(|c| inline_copies(c, named, false, found)),
                _ => {}
            }
        }
        let mut found = 0;
        inline_copies(&doc["paths"], &named, false, &mut found);
        for s in doc["components"]["schemas"].as_object().unwrap().values() {
            inline_copies(s, &named, true, &mut found);
        }
        assert_eq!(found, 0, "inline copies of named schemas");
        fn untitled(v: &Value, found: &mut Vec<String>) {
            if let Value::Object(m) = v {
                for key in ["oneOf", "anyOf"] {
                    for variant in m.get(key).and_then(Value::as_array).into_iter().flatten() {
                        if variant.get("properties").is_some() && variant.get("title").is_none() {
                            found.push(variant.to_string());
                        }
                    }
                }
                m.values().for_each(|c| untitled(c, found));
            } else if let Value::Array(a) = v {
                a.iter().for_each(|c| untitled(c, found));
            }
        }
        let mut found = Vec::new();
        untitled(&doc["components"], &mut found);
        assert!(found.is_empty(), "untitled variants: {found:?}");
    }
}
