//! Refused requests, one at a time or as a table: each names its request and
//! the answer it must get (status, and the contract's `error` code and a part
//! of its `message` when the test asserts them). A failure names the method,
//! the path, the probe's note and the body that came back.
//!
//! ```ignore
//! assert_all_refused(&app, [
//!     Call::get("/v1/cases", "nope").refused(StatusCode::UNAUTHORIZED, "unauthorized"),
//!     Call::post("/v1/policies", &a.user, policy(true)).status(StatusCode::FORBIDDEN),
//! ])
//! .await;
//! ```

use super::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::Value;

enum Body {
    None,
    Json(Value),
    /// Sent as is with `content-type: application/json` (malformed JSON).
    Raw(String),
}

/// A request: method, path, bearer token (`None`: anonymous) and body.
pub struct Call<'a> {
    method: Method,
    path: String,
    token: Option<&'a str>,
    body: Body,
}

impl<'a> Call<'a> {
    pub fn new(
        method: Method,
        path: impl Into<String>,
        token: Option<&'a str>,
        body: Option<Value>,
    ) -> Self {
        Call {
            method,
            path: path.into(),
            token,
            body: body.map_or(Body::None, Body::Json),
        }
    }

    pub fn get(path: impl Into<String>, token: &'a str) -> Self {
        Call::new(Method::GET, path, Some(token), None)
    }

    pub fn post(path: impl Into<String>, token: &'a str, body: Value) -> Self {
        Call::new(Method::POST, path, Some(token), Some(body))
    }

    pub fn patch(path: impl Into<String>, token: &'a str, body: Value) -> Self {
        Call::new(Method::PATCH, path, Some(token), Some(body))
    }

    /// A raw body, e.g. malformed JSON (`TestApp::raw`).
    pub fn raw(method: Method, path: impl Into<String>, token: &'a str, body: &str) -> Self {
        Call {
            method,
            path: path.into(),
            token: Some(token),
            body: Body::Raw(body.to_string()),
        }
    }

    /// Must be answered with `status` and the error code `code`.
    pub fn refused(self, status: StatusCode, code: &'a str) -> Probe<'a> {
        Probe {
            call: self,
            status,
            code: Some(code),
            message: None,
            note: None,
        }
    }

    /// Must be answered with `status` (whatever the body).
    pub fn status(self, status: StatusCode) -> Probe<'a> {
        Probe {
            call: self,
            status,
            code: None,
            message: None,
            note: None,
        }
    }
}

/// A request and the answer it must get.
pub struct Probe<'a> {
    call: Call<'a>,
    status: StatusCode,
    code: Option<&'a str>,
    message: Option<&'a str>,
    note: Option<String>,
}

impl<'a> Probe<'a> {
    /// The answer's `message` must contain `part` (`""`: must be a string).
    pub fn message(mut self, part: &'a str) -> Self {
        self.message = Some(part);
        self
    }

    /// Why this answer is expected, shown when it is not.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Send the request, assert the answer and return its body.
    pub async fn check(&self, app: &TestApp) -> Value {
        let Call {
            method,
            path,
            token,
            body,
        } = &self.call;
        let (s, v) = match body {
            Body::None => app.call(method.clone(), path, *token, None).await,
            Body::Json(json) => {
                app.call(method.clone(), path, *token, Some(json.clone()))
                    .await
            }
            Body::Raw(text) => {
                let token = token.expect("a raw body is sent with a token");
                app.raw(method.clone(), path, token, text).await
            }
        };
        let note = self
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        match self.code {
            Some(code) => assert_eq!(
                (s, v["error"].as_str()),
                (self.status, Some(code)),
                "{method} {path}{note}: {v}"
            ),
            None => assert_eq!(s, self.status, "{method} {path}{note}: {v}"),
        }
        if let Some(part) = self.message {
            assert!(
                v["message"].as_str().is_some_and(|m| m.contains(part)),
                "{method} {path}{note}: the message should contain {part:?}: {v}"
            );
        }
        v
    }
}

/// Send one request that must be refused with `status` and the error code
/// `code`; returns the answer's body.
pub async fn assert_refused(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    status: StatusCode,
    code: &str,
) -> Value {
    Call::new(method, path, Some(token), body)
        .refused(status, code)
        .check(app)
        .await
}

/// Send every probe in order, each answered as it says.
pub async fn assert_all_refused<'a>(app: &TestApp, probes: impl IntoIterator<Item = Probe<'a>>) {
    for probe in probes {
        probe.check(app).await;
    }
}
