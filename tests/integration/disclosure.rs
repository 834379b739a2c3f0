//! Disclosure in every corner (R43, R51, R57, R58): overlapping shares,
//! revocation of one of several covering shares, what an imported copy may
//! do after the collaboration ends, onward recipients after a revocation,
//! and link shares to a partner's addresses.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A strict policy: no GPS, no transcript, no notes.
fn strict_terms() -> Value {
    let mut p = policy(true);
    p["name"] = json!("strict");
    set(&mut p, "evidence_terms.gps", false);
    set(&mut p, "evidence_terms.transcript", false);
    set(&mut p, "evidence_terms.evidence_notes", false);
    p
}

/// Create `body` as a policy of `org` and assign it to `partner`.
pub(crate) async fn assign(app: &TestApp, admin: &str, partner: Uuid, body: Value) {
    let (s, p) = app.post("/v1/policies", admin, body).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, v) = app
        .put(
            &format!("/v1/partners/{partner}/policy"),
            admin,
            json!({ "policy_id": p["id"] }),
        )
        .await;
    assert!(s.is_success(), "{v}");
}

async fn unassign(app: &TestApp, admin: &str, partner: Uuid) {
    let (s, v) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/partners/{partner}/policy"),
            Some(admin),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
}

/// The partner's external view of `case`, by title.
async fn external(app: &TestApp, token: &str, case: Uuid) -> Vec<Value> {
    let (s, v) = app.get(&format!("/v1/cases/{case}/evidence"), token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

fn titled<'a>(items: &'a [Value], title: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["title"] == title)
        .unwrap_or_else(|| panic!("{title} not in {items:?}"))
}

fn assert_strict(item: &Value) {
    for field in ["gps", "transcript", "notes"] {
        assert!(item.get(field).is_none(), "{field} leaked: {item}");
    }
}

async fn revoke(app: &TestApp, token: &str, share: &Value) {
    let (s, v) = app
        .call(
            reqwest::Method::POST,
            &format!("/v1/shares/{}/revoke", share["id"].as_str().unwrap()),
            Some(token),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    app.drain().await;
}

// R43, R51 (issue item 1): a strict partner policy, one item shared, the
// policy unassigned (the default allows everything), then the whole case
// shared: the item shared strictly stays strict in the external view and in
// the imported copy; the item the case share granted first is loose. And
// whichever of the two shares is revoked first, the strict item keeps its
// first snapshot while the other still covers it.
#[tokio::test]
async fn r43_r51_a_covering_share_never_widens_an_item_shared_earlier() {
    for revoke_first in ["strict", "case"] {
        let w = World::spawn(BETA_PD, policy(true), "Overlap").await;
        let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
        assign(app, &a.admin, b.id, strict_terms()).await;
        let (strict_item, _) = app
            .add_evidence(&a.user, case, full_evidence("Strict clip"))
            .await;
        app.add_evidence(&a.user, case, full_evidence("Loose clip"))
            .await;
        app.drain().await;
        let strict = share_naming_user(
            app,
            a,
            case,
            b,
            json!({ "kind": "evidence", "evidence_ids": [strict_item] }),
        )
        .await;
        unassign(app, &a.admin, b.id).await;
        let whole = share_naming_user(app, a, case, b, json!({ "kind": "case" })).await;
        let items = external(app, &b.user, case).await;
        assert_eq!(items.len(), 2, "{items:?}");
        assert_strict(titled(&items, "Strict clip"));
        assert!(titled(&items, "Loose clip").get("gps").is_some());

        // The copy holds what the view shows.
        let (_, received) = app.get("/v1/received", &b.admin).await;
        let received_id = received["items"][0]["id"].as_str().unwrap().to_string();
        let (s, v) = app
            .post(
                &format!("/v1/received/{received_id}/import"),
                &b.admin,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        app.drain().await;
        let (_, received) = app.get("/v1/received", &b.admin).await;
        let imported: Uuid = received["items"][0]["imported_case_id"]
            .as_str()
            .expect("imported")
            .parse()
            .unwrap();
        let copy = external(app, &b.admin, imported).await;
        assert_strict(titled(&copy, "Strict clip"));

        // R51: revoking either share leaves the strict item strict while
        // the other covers it.
        let (gone, kept) = if revoke_first == "strict" {
            (&strict, &whole)
        } else {
            (&whole, &strict)
        };
        revoke(app, &a.user, gone).await;
        let items = external(app, &b.user, case).await;
        assert_strict(titled(&items, "Strict clip"));
        if revoke_first == "case" {
            // Only the strict share is left: the loose item is taken back.
            assert_eq!(items.len(), 1, "{items:?}");
        } else {
            assert_eq!(items.len(), 2, "{items:?}");
        }
        revoke(app, &a.user, kept).await;
        let (s, _) = app
            .get(&format!("/v1/cases/{case}/evidence"), &b.user)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        w.app.stop().await;
    }
}

// R51 (N5): revoking one share takes back what only it covered and grants
// nothing from its siblings' scopes as they are now: a folder moved under a
// shared folder after the share does not go out through a revocation.
#[tokio::test]
async fn r51_revoking_a_sibling_share_grants_nothing_new() {
    let w = World::spawn(BETA_PD, policy(true), "Moves").await;
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    let tree = Tree::build(
        app,
        &a.user,
        case,
        &[("Shared", None), ("Informants", None)],
        &[
            (full_evidence("Scene photo"), Some("Shared")),
            (full_evidence("Informant interview"), Some("Informants")),
            (full_evidence("Invoice"), None),
        ],
    )
    .await;
    let (shared, other) = (tree.folder("Shared"), tree.item("Invoice"));
    app.drain().await;
    share_naming_user(
        app,
        a,
        case,
        b,
        json!({ "kind": "folders", "folder_ids": [shared] }),
    )
    .await;
    let second = share_naming_user(
        app,
        a,
        case,
        b,
        json!({ "kind": "evidence", "evidence_ids": [other] }),
    )
    .await;
    let (s, v) = app
        .patch(
            &format!("/v1/folders/{}", tree.folder("Informants")),
            &a.user,
            json!({ "parent_id": shared }),
        )
        .await;
    assert!(s.is_success(), "{v}");
    revoke(app, &a.user, &second).await;
    let items = external(app, &b.user, case).await;
    let titles: Vec<&str> = items.iter().filter_map(|i| i["title"].as_str()).collect();
    assert_eq!(titles, ["Scene photo"], "{items:?}");
    w.app.stop().await;
}

/// Beta imports the case Alpha shared whole under the default policy, then
/// Alpha shares one more item under a strict partner policy without copy or
/// onward sharing. Returns the imported copy.
async fn imported_then_narrowed(w: &World) -> (Uuid, Vec<Value>) {
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    app.add_evidence(&a.user, case, full_evidence("First"))
        .await;
    app.drain().await;
    let first = share_naming_user(app, a, case, b, json!({ "kind": "case" })).await;
    let (_, received) = app.get("/v1/received", &b.admin).await;
    let received_id = received["items"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .post(
            &format!("/v1/received/{received_id}/import"),
            &b.admin,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    app.drain().await;
    let (_, received) = app.get("/v1/received", &b.admin).await;
    let imported: Uuid = received["items"][0]["imported_case_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut strict = strict_terms();
    set(&mut strict, "permissions.copy_download", false);
    set(&mut strict, "permissions.internal_share", false);
    assign(app, &a.admin, b.id, strict).await;
    let (second, _) = app
        .add_evidence(&a.user, case, json!({ "title": "Ledger" }))
        .await;
    app.drain().await;
    let narrow = app
        .share_and_settle(
            &a.user,
            case,
            to_partner(
                b.id,
                json!({ "kind": "evidence", "evidence_ids": [second] }),
            ),
        )
        .await;
    (imported, vec![first, narrow])
}

// R51 (issue item 2): with copy and onward sharing refused, the imported
// copy cannot go onward — and revoking everything does not lift that: no
// internal share, no share with another org, no link share, no onward
// recipient. Revoking the strict share alone does not widen either.
#[tokio::test]
async fn r51_a_revocation_never_lifts_the_copys_limits() {
    let w = World::spawn(BETA_PD, policy(true), "Narrowed").await;
    let (app, a, b) = (&w.app, &w.a, &w.b);
    let c = app.create_org("Gamma PD", "lea").await;
    app.partner(b.id, c.id).await;
    app.setup(b, policy(true), false).await;
    let (imported, shares) = imported_then_narrowed(&w).await;
    let refusals = |app: &TestApp| {
        let body_link = json!({ "scope": { "kind": "case" }, "recipient": { "email": "x@y.example" },
                                "package": "zip", "duration_hours": 24 });
        let probes = vec![
            Call::post(
                format!("/v1/cases/{imported}/shares"),
                &b.admin,
                to_partner(c.id, json!({ "kind": "case" })),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids"),
            Call::post(
                format!("/v1/cases/{imported}/link-shares"),
                &b.admin,
                body_link,
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids"),
            Call::post(
                format!("/v1/cases/{imported}/shares"),
                &b.admin,
                internal_share(json!([{ "user_id": b.user_id }])),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids"),
        ];
        let _ = app;
        probes
    };
    assert_all_refused(app, refusals(app)).await;
    // The strict share alone revoked: the copy may still not leave.
    revoke(app, &a.user, &shares[1]).await;
    assert_all_refused(app, refusals(app)).await;
    // Everything revoked: still refused.
    revoke(app, &a.user, &shares[0]).await;
    assert_all_refused(app, refusals(app)).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM shares WHERE org_id = '{}'",
            b.id
        ))
        .await,
        0
    );
    assert_eq!(app.count("SELECT count(*) FROM link_shares").await, 0);
    w.app.stop().await;
}

// R51: the dissemination log keeps what the receiver did with its copy
// while the collaboration lasted, after it ends.
#[tokio::test]
async fn r51_dissemination_entries_stay_after_the_collaboration_ends() {
    let w = World::spawn(BETA_PD, policy(true), "History").await;
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    let c = app.create_org("Gamma PD", "lea").await;
    app.partner(b.id, c.id).await;
    app.setup(b, policy(true), false).await;
    app.add_evidence(&a.user, case, full_evidence("First"))
        .await;
    app.drain().await;
    let share = app.share_case_with(&a.user, case, b.id).await;
    let (_, received) = app.get("/v1/received", &b.admin).await;
    let received_id = received["items"][0]["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/received/{received_id}/import"),
        &b.admin,
        json!({}),
    )
    .await;
    app.drain().await;
    let (_, received) = app.get("/v1/received", &b.admin).await;
    let imported = received["items"][0]["imported_case_id"]
        .as_str()
        .unwrap()
        .to_string();
    app.share_and_settle(
        &b.admin,
        imported.parse().unwrap(),
        to_partner(c.id, json!({ "kind": "case" })),
    )
    .await;
    assert_eq!(dissemination(app, &a.user, case).await, 1);
    revoke(app, &a.user, &share).await;
    assert_eq!(
        dissemination(app, &a.user, case).await,
        1,
        "history stays after the end"
    );
    w.app.stop().await;
}

async fn dissemination(app: &TestApp, token: &str, case: Uuid) -> usize {
    let (s, v) = app
        .get(&format!("/v1/cases/{case}/dissemination"), token)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().len()
}

// R57, R51 (N4): recipients added onward are emailed when the
// collaboration ends, lose the external view, and do not come back when the
// owner shares again naming someone else.
#[tokio::test]
async fn r57_onward_recipients_are_told_and_stay_out_after_a_reshare() {
    let w = World::spawn(BETA_PD, policy(true), "Onward").await;
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    app.add_evidence(&a.user, case, full_evidence("First"))
        .await;
    app.drain().await;
    let share = share_naming_user(app, a, case, b, json!({ "kind": "case" })).await;
    let (bob, bob_token) = app.create_user(b.id, "Bob Onward", "user").await;
    let (s, v) = app
        .post(
            &format!("/v1/cases/{case}/recipients"),
            &b.user,
            json!({ "user_id": bob }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    app.drain().await;
    assert_eq!(external(app, &bob_token, case).await.len(), 1);
    revoke(app, &a.user, &share).await;
    let bob_mail = app.user_email(bob).await;
    eventually("the revocation mail to the onward recipient", || async {
        mails_to(app, &bob_mail)
            .iter()
            .any(|m| subject(m).to_lowercase().contains("revoked"))
            .then_some(())
    })
    .await;
    let (s, _) = app
        .get(&format!("/v1/cases/{case}/evidence"), &bob_token)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Shared again, naming only Beta's user: Bob stays out.
    let (carol, _) = app.create_user(b.id, "Carol Named", "user").await;
    app.share_and_settle(
        &a.user,
        case,
        to_partner_naming(
            b.id,
            json!({ "kind": "case" }),
            json!([{ "user_id": carol }]),
        ),
    )
    .await;
    let (s, v) = app
        .get(&format!("/v1/cases/{case}/evidence"), &bob_token)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    w.app.stop().await;
}

// R57 (first half): a receiver's admin, or the user who added them, removes
// a recipient it added onward: access ends at once (external view), the
// removal is audited and the recipient emailed; anyone else is refused, and
// a repeat changes nothing and mails no one.
#[tokio::test]
async fn r57_a_receiver_removes_a_recipient_it_added_onward() {
    let w = World::spawn(BETA_PD, policy(true), "Onward removal").await;
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    app.add_evidence(&a.user, case, full_evidence("First"))
        .await;
    share_naming_user(app, a, case, b, json!({ "kind": "case" })).await;
    let (bob, bob_token) = app.create_user(b.id, "Bob Onward", "user").await;
    let (dave, dave_token) = app.create_user(b.id, "Dave Other", "user").await;
    let (s, v) = app
        .post(
            &format!("/v1/cases/{case}/recipients"),
            &b.user,
            json!({ "user_id": bob }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    app.drain().await;
    assert_eq!(external(app, &bob_token, case).await.len(), 1);
    let path = format!("/v1/cases/{case}/recipients/user/{bob}");
    let delete = |token: String| {
        let path = path.clone();
        async move {
            app.call(reqwest::Method::DELETE, &path, Some(&token), None)
                .await
        }
    };
    // Dave sees nothing of it (404); Gamma's admin neither.
    let (s, _) = delete(dave_token.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "dave was not named");
    // Beta's user who added Bob may; first an unknown principal.
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/cases/{case}/recipients/user/{}", Uuid::new_v4()),
            Some(&b.user),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = delete(b.user.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (s, _) = app
        .get(&format!("/v1/cases/{case}/evidence"), &bob_token)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "access ends with the answer");
    app.drain().await;
    let bob_mail = app.user_email(bob).await;
    let told = mails_to(app, &bob_mail)
        .iter()
        .filter(|m| subject(m).contains("Beta PD removed your access"))
        .count();
    assert_eq!(told, 1, "the removed recipient is told once");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'access_revoked' AND actor_user_id = $1
            AND details->>'onward' = 'true'",
    )
    .bind(b.user_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // Again: nothing to remove, nobody mailed.
    let (s, _) = delete(b.admin.clone()).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    app.drain().await;
    assert_eq!(
        mails_to(app, &bob_mail)
            .iter()
            .filter(|m| subject(m).contains("Beta PD removed your access"))
            .count(),
        1
    );
    // Added by Beta's user, Dave (a plain user) may not remove Carol.
    let (carol, _) = app.create_user(b.id, "Carol Onward", "user").await;
    app.post(
        &format!("/v1/cases/{case}/recipients"),
        &b.user,
        json!({ "user_id": carol }),
    )
    .await;
    let (s, v) = app
        .post(
            &format!("/v1/cases/{case}/recipients"),
            &b.user,
            json!({ "user_id": dave }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/cases/{case}/recipients/user/{carol}"),
            Some(&dave_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    w.app.stop().await;
}

// R58 (issue item 3): a link to a partner's user is governed by that
// partner's policy whether the user is named by id, by its address, or
// reached through an address at the partner's domains; anyone else gets the
// default policy. A package's audit attachment covers only its items.
#[tokio::test]
async fn r58_link_shares_to_a_partners_addresses_follow_the_partners_policy() {
    let w = World::spawn(BETA_PD, policy(true), "Links").await;
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    let (packaged, _) = app
        .add_evidence(&a.user, case, full_evidence("Packaged"))
        .await;
    app.add_evidence(&a.user, case, full_evidence("Left out"))
        .await;
    app.drain().await;
    // Another partner's share and a first link, both to stay out of the
    // package's audit attachment.
    let c = app.create_org("Gamma PD", "lea").await;
    app.partner(a.id, c.id).await;
    app.share_case_with(&a.user, case, c.id).await;
    let mut no_copy = policy(true);
    no_copy["name"] = json!("no copy");
    set(&mut no_copy, "permissions.copy_download", false);
    assign(app, &a.admin, b.id, no_copy).await;
    let link = |recipient: Value| {
        json!({ "scope": { "kind": "evidence", "evidence_ids": [packaged] }, "recipient": recipient,
                "attachments": { "audit_trails": true, "transcripts": false, "table_of_contents": true },
                "package": "zip", "duration_hours": 24 })
    };
    let beta_user_email = app.user_email(b.user_id).await;
    let before = app.count("SELECT count(*) FROM link_shares").await;
    assert_all_refused(
        app,
        [
            Call::post(
                format!("/v1/cases/{case}/link-shares"),
                &a.user,
                link(json!({ "user_id": b.user_id })),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids"),
            Call::post(
                format!("/v1/cases/{case}/link-shares"),
                &a.user,
                link(json!({ "email": beta_user_email })),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids")
            .note("the partner user's own address"),
            Call::post(
                format!("/v1/cases/{case}/link-shares"),
                &a.user,
                link(json!({ "email": format!("someone.new@{}", org_domain("Beta PD")) })),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids")
            .note("an address at the partner's domain"),
            Call::post(
                format!("/v1/cases/{case}/link-shares"),
                &a.user,
                link(json!({ "email": format!("DET.X@Sub.{}", org_domain("Beta PD").to_uppercase()) })),
            )
            .refused(StatusCode::FORBIDDEN, "policy_forbids")
            .note("a subdomain of the partner's domain, any case"),
        ],
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM link_shares").await, before);

    // Anyone else: the default policy, which allows the package. A first
    // link, to stay out of the second one's audit attachment.
    let (s, first) = app
        .post(
            &format!("/v1/cases/{case}/link-shares"),
            &a.user,
            link(json!({ "email": "clerk@court.example" })),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let (s, v) = app
        .post(
            &format!("/v1/cases/{case}/link-shares"),
            &a.user,
            link(json!({ "email": "counsel@defence.example" })),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    app.drain().await;
    let (_, view) = app.get(&format!("/v1/link-shares/{id}"), &a.user).await;
    assert_eq!(view["status"], "complete", "{view}");
    let url = url::Url::parse(view["download_url"].as_str().unwrap()).unwrap();
    let resp = app
        .send(app.client.get(format!("{}{}", app.base, url.path())))
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(resp.body.to_vec())).unwrap();
    let mut audit = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("audit.json").unwrap(), &mut audit).unwrap();
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let items = audit["items"].as_array().unwrap();
    assert!(
        items.iter().any(|i| i["action"] == "case_created"),
        "{audit}"
    );
    for item in items {
        assert!(
            item["evidence_id"].is_null() || item["evidence_id"] == packaged.to_string(),
            "other evidence: {item}"
        );
        assert!(item["share_id"].is_null(), "a share: {item}");
        let action = item["action"].as_str().unwrap();
        assert!(
            !action.starts_with("link_share")
                || (action == "link_share" && item["details"]["link_share_id"] == id.as_str()),
            "another link share's entry, or a later one: {item}"
        );
    }
    assert!(
        items.iter().any(|i| i["action"] == "link_share"),
        "the package names its own link share: {audit}"
    );
    assert!(!audit.to_string().contains(&c.id.to_string()), "{audit}");
    assert!(
        !audit.to_string().contains(first["id"].as_str().unwrap()),
        "{audit}"
    );
    w.app.stop().await;
}

// M2: a user's link shares are metered: past the daily quota, 429 and
// nothing recorded.
#[tokio::test]
async fn r40_link_shares_have_a_daily_quota_per_user() {
    let app = spawn_with(Options {
        tune: Some(std::sync::Arc::new(|s| {
            s.max_link_shares_per_user_per_day = 2
        })),
        ..Options::default()
    })
    .await;
    let (a, _b, case) = two_partners(&app, policy(true)).await;
    let body = json!({ "scope": { "kind": "case" }, "recipient": { "email": "x@relay.example" },
                       "package": "zip", "duration_hours": 24 });
    for _ in 0..2 {
        let (s, v) = app
            .post(
                &format!("/v1/cases/{case}/link-shares"),
                &a.user,
                body.clone(),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }
    assert_all_refused(
        &app,
        [
            Call::post(format!("/v1/cases/{case}/link-shares"), &a.user, body)
                .refused(StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        ],
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM link_shares").await, 2);
    app.stop().await;
}

// R41 (L7): applying case updates edits the imported copy, which only its
// owner and the org's admins may do; another reader of the copy is refused.
#[tokio::test]
async fn r41_only_the_copys_managers_apply_case_updates() {
    let w = World::spawn(BETA_PD, policy(true), "Updates").await;
    let (app, a, b, case) = (&w.app, &w.a, &w.b, w.case);
    share_naming_user(app, a, case, b, json!({ "kind": "case" })).await;
    let (_, received) = app.get("/v1/received", &b.admin).await;
    let received_id = received["items"][0]["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/received/{received_id}/import"),
        &b.admin,
        json!({}),
    )
    .await;
    app.drain().await;
    let (_, received) = app.get("/v1/received", &b.admin).await;
    let imported = received["items"][0]["imported_case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = app
        .patch(
            &format!("/v1/cases/{case}"),
            &a.user,
            json!({ "title": "Renamed by the sharer" }),
        )
        .await;
    assert!(s.is_success(), "{v}");
    app.drain().await;
    let apply = format!("/v1/cases/{imported}/updates/apply");
    assert_all_refused(
        app,
        [Call::post(apply.clone(), &b.user, json!({ "all": true }))
            .refused(StatusCode::FORBIDDEN, "forbidden")],
    )
    .await;
    let (s, v) = app.post(&apply, &b.admin, json!({ "all": true })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["applied_case_updates"], 1, "{v}");
    w.app.stop().await;
}

// R60 (issue item 4): a link's download token is derived from the dedicated
// download key, not from the audit key or anything a partner can learn: the
// token the old construction gives (the audit key, the link's id) opens
// nothing, and the service's own URL does.
#[tokio::test]
async fn r60_download_tokens_come_from_the_dedicated_secret() {
    use caseshare::audit::AuditKey;
    let w = World::spawn(BETA_PD, policy(true), "Tokens").await;
    let (app, a) = (&w.app, &w.a);
    app.add_evidence(&a.user, w.case, full_evidence("Clip"))
        .await;
    app.drain().await;
    let (s, v) = app
        .post(
            &format!("/v1/cases/{}/link-shares", w.case),
            &a.user,
            json!({ "scope": { "kind": "case" }, "recipient": { "email": "counsel@defence.example" },
                    "package": "zip", "duration_hours": 24 }),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id: Uuid = v["id"].as_str().unwrap().parse().unwrap();
    app.drain().await;
    let (_, view) = app.get(&format!("/v1/link-shares/{id}"), &a.user).await;
    let url = url::Url::parse(view["download_url"].as_str().unwrap()).unwrap();
    let token = url.path().rsplit('/').next().unwrap().to_string();
    let derived = |key: &str| {
        hex::encode(
            AuditKey::new(key.as_bytes())
                .derive("link share download token")
                .tag(id.as_bytes()),
        )
    };
    assert_eq!(token, derived(TEST_DOWNLOAD_KEY));
    let forged = derived(TEST_AUDIT_KEY);
    assert_ne!(forged, token);
    let resp = app
        .send(
            app.client
                .get(format!("{}/v1/downloads/{forged}", app.base)),
        )
        .await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    let resp = app
        .send(app.client.get(format!("{}{}", app.base, url.path())))
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    // Nothing in the database gives the token either: only its hash is kept.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM link_shares WHERE id = '{id}' AND token_hash IS NOT NULL"
        ))
        .await,
        1
    );
    w.app.stop().await;
}
