//! The HTTP side of a test application: requests as a principal, whole
//! answers checked against the served OpenAPI document, and the calls the
//! scenarios repeat (orgs, setup, cases, evidence, shares, drain).

use super::*;

/// A whole answer of the app (`TestApp::send`).
pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// The status and the body as JSON (a body that is not JSON as a string).
    pub fn json(self) -> (StatusCode, Value) {
        let text = String::from_utf8_lossy(&self.body).into_owned();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (self.status, value)
    }

    /// What the contract checker needs of this answer to `method` `path`.
    pub fn answer<'a>(&'a self, method: &'a Method, path: &'a str) -> Answer<'a> {
        Answer {
            method,
            path,
            status: self.status,
            content_type: self
                .headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            body: &self.body,
        }
    }
}

/// The path of `url` as the router sees it (no query string).
pub fn request_path(url: &url::Url) -> String {
    url.path().to_string()
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await.json()
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// Send a raw body (for malformed JSON tests).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(req).await.json()
    }

    /// Send any request to the app (uploads, downloads, custom headers) and
    /// read the whole answer, checked against the served OpenAPI document
    /// like every other request of the tests.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Response {
        let (method, path, response) = self.fetch(req).await;
        self.conform(&method, &path, &response).await;
        response
    }

    /// Send a request and read the whole answer, unchecked, with the
    /// request's method and path: for a caller that checks the answer itself
    /// (the fuzz test collects every violation instead of stopping at one).
    pub async fn fetch(&self, req: reqwest::RequestBuilder) -> (Method, String, Response) {
        let (client, req) = req.build_split();
        let req = req.expect("a well-formed request");
        let (method, path) = (req.method().clone(), request_path(req.url()));
        let res = client.execute(req).await.expect("request sent");
        let (status, headers) = (res.status(), res.headers().clone());
        let body = res.bytes().await.unwrap_or_default().to_vec();
        (
            method,
            path,
            Response {
                status,
                headers,
                body,
            },
        )
    }

    /// Panic when `response` (to `method` `path`) violates the served
    /// OpenAPI document.
    pub async fn conform(&self, method: &Method, path: &str, response: &Response) {
        contract(&self.client, &self.base)
            .await
            .assert(&response.answer(method, path));
    }

    pub async fn create_org(&self, name: &str, kind: &str) -> Org {
        let (s, org) = self
            .post(
                "/v1/orgs",
                SERVICE_TOKEN,
                json!({ "name": name, "kind": kind,
                "notification_email": format!("desk@{}", org_domain(name)),
                "email_domains": [org_domain(name)] }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{org}");
        let id: Uuid = org["id"].as_str().unwrap().parse().unwrap();
        let (admin_id, admin) = self
            .create_user(id, &format!("{name} Admin"), "admin")
            .await;
        let (user_id, user) = self.create_user(id, &format!("{name} User"), "user").await;
        Org {
            id,
            admin,
            admin_id,
            user,
            user_id,
        }
    }

    pub async fn create_user(&self, org: Uuid, name: &str, role: &str) -> (Uuid, String) {
        let domain: Option<String> =
            sqlx::query_scalar("SELECT email_domains[1] FROM orgs WHERE id = $1")
                .bind(org)
                .fetch_optional(&self.db)
                .await
                .unwrap()
                .flatten();
        let email = format!(
            "{}@{}",
            name.to_lowercase().replace(' ', "."),
            domain.unwrap_or_else(|| format!("{}.example", &org.simple().to_string()[..8]))
        );
        let (s, u) = self
            .post(
                &format!("/v1/orgs/{org}/users"),
                SERVICE_TOKEN,
                json!({ "name": name, "email": email, "role": role }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        (
            u["id"].as_str().unwrap().parse().unwrap(),
            u["token"].as_str().unwrap().to_string(),
        )
    }

    pub async fn user_email(&self, user: Uuid) -> String {
        sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn partner(&self, a: Uuid, b: Uuid) {
        let (s, v) = self
            .post(
                "/v1/partnerships",
                SERVICE_TOKEN,
                json!({ "org_ids": [a, b] }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    pub async fn setup(&self, org: &Org, policy: Value, auto_import: bool) -> Uuid {
        let (s, v) = self
            .post(
                "/v1/sharing/setup",
                &org.admin,
                json!({ "default_policy": policy, "auto_import": auto_import }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["default_policy_id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn create_case(&self, token: &str, title: &str) -> Uuid {
        let (s, v) = self
            .post(
                "/v1/cases",
                token,
                json!({ "case_number": format!("CN-{}", &Uuid::new_v4().simple().to_string()[..6]), "title": title,
                        "description": "a description", "notes": ["case note one"], "tags": ["case-tag"] }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn create_folder(
        &self,
        token: &str,
        case: Uuid,
        name: &str,
        parent: Option<Uuid>,
    ) -> Uuid {
        let (s, v) = self
            .post(
                &format!("/v1/cases/{case}/folders"),
                token,
                json!({ "name": name, "parent_id": parent }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().parse().unwrap()
    }

    /// Add evidence and return (evidence id, job id).
    pub async fn add_evidence(&self, token: &str, case: Uuid, body: Value) -> (Uuid, Uuid) {
        let (s, v) = self
            .post(&format!("/v1/cases/{case}/evidence"), token, body)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        (
            v["id"].as_str().unwrap().parse().unwrap(),
            v["job_id"].as_str().unwrap().parse().unwrap(),
        )
    }

    /// The `i64` a query answers, e.g. `SELECT count(*) FROM shares`.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db).await.unwrap()
    }

    pub async fn job_status(&self, job: Uuid) -> String {
        sqlx::query_scalar("SELECT status::text FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn wait_job(&self, job: Uuid) -> String {
        eventually("job to finish", || async {
            let s = self.job_status(job).await;
            (s == "complete" || s == "dead").then_some(s)
        })
        .await
    }

    /// Wait until no job is queued, running or retrying and the outbox is empty.
    pub async fn drain(&self) {
        eventually("all jobs to finish", || async {
            let busy: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM jobs WHERE status IN ('queued', 'running', 'retrying'))
                      + (SELECT count(*) FROM outbox WHERE published_at IS NULL)",
            )
            .fetch_one(&self.db)
            .await
            .unwrap();
            (busy == 0).then_some(())
        })
        .await
    }

    pub async fn share(&self, token: &str, case: Uuid, body: Value) -> Value {
        let (s, v) = self
            .post(&format!("/v1/cases/{case}/shares"), token, body)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["status"], "processing");
        v
    }

    /// Share a whole case with a partner org and wait until the share is complete.
    pub async fn share_case_with(&self, token: &str, case: Uuid, partner: Uuid) -> Value {
        let body = json!({ "scope": { "kind": "case" }, "target": { "kind": "partner", "org_id": partner, "recipients": [] } });
        let share = self.share(token, case, body).await;
        let done = self.wait_share(token, share["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "complete", "{done}");
        done
    }

    /// Share, wait until the share is complete and every job (notices
    /// included) has finished. Returns the completed share.
    pub async fn share_and_settle(&self, token: &str, case: Uuid, body: Value) -> Value {
        let share = self.share(token, case, body).await;
        let done = self.wait_share(token, share["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "complete", "{done}");
        self.drain().await;
        done
    }

    pub async fn wait_share(&self, token: &str, share_id: &str) -> Value {
        eventually("share to complete", || async {
            let (_, v) = self.get(&format!("/v1/shares/{share_id}"), token).await;
            (v["status"] != "processing").then_some(v)
        })
        .await
    }

    /// Stop the application, remove this test's broker objects and, when it
    /// created it, its database (best effort: a database another process of
    /// the test still uses stays, for `.ci/run`'s sweep).
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
        self.cleanup_broker().await;
        if self.owns_database {
            self.db.close().await;
            super::app::drop_database(&self.database_url).await;
        }
    }

    pub async fn cleanup_broker(&self) {
        super::app::cleanup_broker(&self.amqp_url, &self.prefix).await
    }
}
