//! Recipient lookup (R56), through `GET /v1/directory`: prefixes of names,
//! email addresses and badge IDs in the caller's own org (ignoring case,
//! paged by cursor), only exact email addresses and badge IDs in a partner
//! org, and 404 for any other org.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A user of `org` with this name, email address and badge ID.
async fn person(app: &TestApp, org: Uuid, name: &str, email: &str, badge: Option<&str>) -> Uuid {
    let (s, v) = app
        .post(
            &format!("/v1/orgs/{org}/users"),
            SERVICE_TOKEN,
            json!({ "name": name, "email": email, "badge_id": badge, "role": "user" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().parse().unwrap()
}

/// The directory path looking for `q` (encoded), with more of the query.
fn lookup(q: &str, more: &str) -> String {
    let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    format!("/v1/directory?q={q}{more}")
}

/// Every page of the lookup at `path`, `limit` a page, following
/// `next_cursor`: how many pages, and the items in order.
async fn walk(app: &TestApp, path: &str, token: &str, limit: usize) -> (usize, Vec<Value>) {
    let (mut items, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let url = match &cursor {
            None => format!("{path}&limit={limit}"),
            Some(c) => format!("{path}&limit={limit}&cursor={c}"),
        };
        let (s, v) = app.get(&url, token).await;
        assert_eq!(s, StatusCode::OK, "{url}: {v}");
        pages += 1;
        let page = v["items"].as_array().unwrap();
        assert!(page.len() <= limit, "{v}");
        items.extend(page.iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (pages, items),
        }
    }
}

/// The items of one lookup (a single page).
async fn found(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let (s, v) = app.get(path, token).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    assert!(v["next_cursor"].is_null(), "{v}");
    v["items"].as_array().unwrap().clone()
}

fn ids(items: &[Value]) -> Vec<Uuid> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

// R56: in its own org a user finds users by a prefix of their name, email
// address or badge ID, whatever the case, in pages that follow each other by
// cursor, ordered by name; a word inside a name is not a prefix, and nobody
// of another org is found.
#[tokio::test]
async fn r56_own_org_finds_users_by_prefix_of_name_email_or_badge_in_pages() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let b = app.create_org("Beta PD", "lea").await;
    app.partner(a.id, b.id).await;
    let mut smiths = Vec::new();
    for (i, name) in [
        "smith 1",
        "SMITH 2",
        "Smith 3",
        "Smithers 4",
        "sMiTh 5",
        "Smith 6",
        "Smith 7",
    ]
    .iter()
    .enumerate()
    {
        let email = format!("officer{i}@alpha-pd.example");
        smiths.push(person(&app, a.id, name, &email, None).await);
    }
    let inside = person(&app, a.id, "John Smith", "john@alpha-pd.example", None).await;
    person(&app, b.id, "Smith Beta", "smith@beta-pd.example", None).await;
    let by_email = person(&app, a.id, "Dana Doe", "DDoe@Alpha-PD.example", None).await;
    let by_badge = person(
        &app,
        a.id,
        "Erin Roe",
        "erin@alpha-pd.example",
        Some("BX-1001"),
    )
    .await;

    let (pages, items) = walk(&app, &lookup("sMiTh", ""), &a.user, 3).await;
    assert_eq!(pages, 3, "{items:?}");
    let mut expected = smiths.clone();
    expected.sort_by_key(|id| {
        let i = smiths.iter().position(|s| s == id).unwrap();
        (
            [
                "smith 1",
                "smith 2",
                "smith 3",
                "smithers 4",
                "smith 5",
                "smith 6",
                "smith 7",
            ][i],
            *id,
        )
    });
    assert_eq!(
        ids(&items),
        expected,
        "ordered by lowercase name, each once"
    );
    assert!(
        !ids(&items).contains(&inside),
        "a word inside a name is no prefix"
    );
    for item in &items {
        assert_eq!(item["kind"], "user");
        assert!(item["email"]
            .as_str()
            .unwrap()
            .ends_with("@alpha-pd.example"));
    }

    // Email and badge prefixes, in another case than stored.
    assert_eq!(
        ids(&found(&app, &lookup("ddoe@ALPHA", ""), &a.user).await),
        [by_email]
    );
    let badge = found(&app, &lookup("bx-10", ""), &a.user).await;
    assert_eq!(ids(&badge), [by_badge]);
    assert_eq!(badge[0]["badge_id"], "BX-1001");
    assert_eq!(badge[0]["name"], "Erin Roe");
    // Naming the own org is the same lookup.
    let own = found(
        &app,
        &lookup("bx-10", &format!("&org_id={}", a.id)),
        &a.user,
    )
    .await;
    assert_eq!(ids(&own), [by_badge]);

    // A cursor is a position in its own list only.
    let (s, v) = app
        .get(&format!("{}&limit=2", lookup("smith", "")), &a.user)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cursor = v["next_cursor"].as_str().unwrap();
    Call::get(lookup("erin", &format!("&cursor={cursor}")), &a.user)
        .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
        .message("no longer in this list")
        .check(&app)
        .await;
    app.stop().await;
}

// R56: groups are found by a prefix of their name, listed before users, and
// carry no email address or badge ID.
#[tokio::test]
async fn r56_groups_are_found_by_name_before_users() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let narcisse = person(&app, a.id, "Narcisse Dupont", "nd@alpha-pd.example", None).await;
    let unit = create_group(&app, a.id, "Narcotics Unit", &[narcisse]).await;
    create_group(&app, a.id, "Patrol", &[]).await;
    let items = found(&app, &lookup("NARC", ""), &a.user).await;
    assert_eq!(ids(&items), [unit, narcisse]);
    assert_eq!(
        items[0],
        json!({ "kind": "group", "id": unit, "name": "Narcotics Unit" })
    );
    assert_eq!(items[1]["kind"], "user");
    // Paging crosses from groups to users.
    let (pages, walked) = walk(&app, &lookup("narc", ""), &a.user, 1).await;
    assert_eq!((pages, ids(&walked)), (2, vec![unit, narcisse]));
    app.stop().await;
}

// R56: in a partner org only an exact email address or badge ID (whatever
// the case) resolves, to that one user; a prefix, a name or a group name
// resolves nothing, so the partner's staff cannot be listed.
#[tokio::test]
async fn r56_partner_org_resolves_only_an_exact_email_or_badge() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let b = app.create_org("Beta PD", "lea").await;
    app.partner(a.id, b.id).await;
    let kim = person(
        &app,
        b.id,
        "Kim Park",
        "kim.park@beta-pd.example",
        Some("B-7731"),
    )
    .await;
    person(
        &app,
        b.id,
        "Kim Parker",
        "kim.parker@beta-pd.example",
        Some("B-77310"),
    )
    .await;
    create_group(&app, b.id, "Kim's Squad", &[kim]).await;
    let at_b = format!("&org_id={}", b.id);

    for q in ["Kim.Park@BETA-PD.example", "b-7731", "B-7731"] {
        let items = found(&app, &lookup(q, &at_b), &a.user).await;
        assert_eq!(ids(&items), [kim], "{q}");
        assert_eq!(items[0]["kind"], "user");
        assert_eq!(items[0]["name"], "Kim Park");
    }
    for q in [
        "kim",
        "Kim Park",
        "kim.park@",
        "kim.park@beta-pd",
        "B-773",
        "b-",
        "Kim's Squad",
        "beta-pd.example",
    ] {
        assert_eq!(
            found(&app, &lookup(q, &at_b), &a.user).await,
            Vec::<Value>::new(),
            "{q}"
        );
    }
    // An admin is held to the same rule.
    assert_eq!(
        found(&app, &lookup("kim", &at_b), &a.admin).await,
        Vec::<Value>::new()
    );
    // And the partnership works both ways: B finds A's admin by email only.
    let alpha_admin = app.user_email(a.admin_id).await;
    let at_a = format!("&org_id={}", a.id);
    assert_eq!(
        ids(&found(&app, &lookup(&alpha_admin, &at_a), &b.user).await),
        [a.admin_id]
    );
    assert_eq!(
        found(&app, &lookup("alpha", &at_a), &b.user).await,
        Vec::<Value>::new()
    );
    app.stop().await;
}

// R56, tenant isolation: an org that is not a partner answers 404 exactly as
// an org that does not exist, even for an exact email address of its users.
#[tokio::test]
async fn r56_a_non_partner_org_is_not_found_like_a_missing_one() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let c = app.create_org("Gamma DA", "justice").await;
    let email = app.user_email(c.user_id).await;
    let mut messages = Vec::new();
    for org in [c.id, Uuid::new_v4()] {
        for q in [email.as_str(), "gamma"] {
            let v = Call::get(lookup(q, &format!("&org_id={org}")), &a.user)
                .refused(StatusCode::NOT_FOUND, "not_found")
                .check(&app)
                .await;
            messages.push(v["message"].clone());
        }
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    app.stop().await;
}

// R56: `%`, `_` and `\` in q are characters like any other, not patterns.
#[tokio::test]
async fn r56_like_wildcards_in_q_are_taken_literally() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let percent = person(&app, a.id, "100% Sure", "sure@alpha-pd.example", None).await;
    person(&app, a.id, "1000 Other", "other@alpha-pd.example", None).await;
    let underscore = person(
        &app,
        a.id,
        "A_B Agent",
        "agent@alpha-pd.example",
        Some("X_1"),
    )
    .await;
    person(&app, a.id, "AXB Agent", "axb@alpha-pd.example", Some("XY1")).await;
    let backslash = person(&app, a.id, "Back\\slash", "bs@alpha-pd.example", None).await;
    person(&app, a.id, "Backslash", "b2@alpha-pd.example", None).await;

    for (q, want) in [
        ("100%", vec![percent]),
        ("a_b", vec![underscore]),
        ("x_", vec![underscore]),
        ("back\\", vec![backslash]),
        ("%", vec![]),
        ("_", vec![]),
        ("\\", vec![]),
        ("%sure", vec![]),
    ] {
        assert_eq!(
            ids(&found(&app, &lookup(q, ""), &a.user).await),
            want,
            "{q:?}"
        );
    }
    app.stop().await;
}

// R56: q is required and 1 to 200 characters; paging parameters as on every
// list; the lookup is for users (a service token is refused).
#[tokio::test]
async fn r56_q_missing_empty_or_too_long_is_refused() {
    let app = spawn_app().await;
    let a = app.create_org("Alpha PD", "lea").await;
    let long = "x".repeat(201);
    let at_most = "é".repeat(200);
    assert_all_refused(
        &app,
        [
            Call::get("/v1/directory", &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
                .message("q"),
            Call::get(lookup("", ""), &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
                .message("q must be 1 to 200 characters"),
            Call::get(lookup(&long, ""), &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation")
                .message("q must be 1 to 200 characters"),
            Call::get(lookup("a\0b", ""), &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::get(lookup("a", "&limit=0"), &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::get(lookup("a", "&limit=1001"), &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::get(lookup("a", "&cursor=zz"), &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::get(lookup("a", "&org_id=not-a-uuid"), &a.user)
                .refused(StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Call::get(lookup("a", ""), SERVICE_TOKEN).refused(StatusCode::FORBIDDEN, "forbidden"),
            Call::get(lookup("a", ""), "not-a-token").status(StatusCode::UNAUTHORIZED),
        ],
    )
    .await;
    assert_eq!(
        found(&app, &lookup(&at_most, ""), &a.user).await,
        Vec::<Value>::new()
    );
    app.stop().await;
}
