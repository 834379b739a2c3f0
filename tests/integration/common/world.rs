//! The worlds the tests start from: two partnered orgs and a case of the
//! first, optionally already shared with the second.

use super::{spawn_app, Org, TestApp, SERVICE_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// The usual receiving org: (name, kind) for `partners_with_case`.
pub const BETA_PD: (&str, &str) = ("Beta PD", "lea");

/// "Alpha PD" (LEA) and `receiver` (name, kind), partnered; Alpha is set up
/// with `policy` as its default (no auto-import) and its user owns a case
/// titled `case_title`. Returns (Alpha, the receiver, the case).
pub async fn partners_with_case(
    app: &TestApp,
    receiver: (&str, &str),
    policy: Value,
    case_title: &str,
) -> (Org, Org, Uuid) {
    let a = app.create_org("Alpha PD", "lea").await;
    let b = app.create_org(receiver.0, receiver.1).await;
    app.partner(a.id, b.id).await;
    app.setup(&a, policy, false).await;
    let case = app.create_case(&a.user, case_title).await;
    (a, b, case)
}

/// Two partner LEAs, Alpha PD set up with `policy`, and its case "Burglary".
pub async fn two_partners(app: &TestApp, policy: Value) -> (Org, Org, Uuid) {
    partners_with_case(app, BETA_PD, policy, "Burglary").await
}

/// Two partner LEAs and Alpha PD's case `case_title`, shared whole with
/// Beta PD under `policy`; the share is complete.
pub async fn case_shared_with_partner(
    app: &TestApp,
    policy: Value,
    case_title: &str,
) -> (Org, Org, Uuid) {
    let (a, b, case) = partners_with_case(app, BETA_PD, policy, case_title).await;
    app.share_case_with(&a.user, case, b.id).await;
    (a, b, case)
}

/// A running application with `partners_with_case`'s world.
pub struct World {
    pub app: TestApp,
    pub a: Org,
    pub b: Org,
    pub case: Uuid,
}

impl World {
    pub async fn spawn(receiver: (&str, &str), policy: Value, case_title: &str) -> World {
        let app = spawn_app().await;
        let (a, b, case) = partners_with_case(&app, receiver, policy, case_title).await;
        World { app, a, b, case }
    }
}

/// A share body: `scope` to a partner org, naming no recipient.
pub fn to_partner(org: Uuid, scope: Value) -> Value {
    to_partner_naming(org, scope, json!([]))
}

/// Share `scope` of `from`'s `case` with `to`, naming `to`'s user (R42: so
/// it sees the case), and wait until everything settled; the share.
pub async fn share_naming_user(
    app: &TestApp,
    from: &Org,
    case: Uuid,
    to: &Org,
    scope: Value,
) -> Value {
    app.share_and_settle(
        &from.user,
        case,
        to_partner_naming(to.id, scope, json!([{ "user_id": to.user_id }])),
    )
    .await
}

/// A share body: `scope` to a partner org, naming `recipients` there.
pub fn to_partner_naming(org: Uuid, scope: Value, recipients: Value) -> Value {
    json!({ "scope": scope, "target": { "kind": "partner", "org_id": org, "recipients": recipients } })
}

/// A share body: the whole case to a partner org, naming `recipients`, with
/// the message "Please review".
pub fn partner_share(org: Uuid, recipients: Value) -> Value {
    json!({
        "scope": { "kind": "case" },
        "target": { "kind": "partner", "org_id": org, "recipients": recipients },
        "message": "Please review"
    })
}

/// A group of `org` with `members`, created by the service principal.
pub async fn create_group(app: &TestApp, org: Uuid, name: &str, members: &[Uuid]) -> Uuid {
    let (s, v) = app
        .post(
            &format!("/v1/orgs/{org}/groups"),
            SERVICE_TOKEN,
            json!({ "name": name, "member_ids": members }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().parse().unwrap()
}

/// A share body: the whole case to users and groups of the sharer's own org (R14).
pub fn internal_share(recipients: Value) -> Value {
    json!({ "scope": { "kind": "case" }, "target": { "kind": "internal", "recipients": recipients } })
}

/// An evidence body carrying every field a policy governs (R6–R11), each
/// with a recognizable secret value.
pub fn full_evidence(title: &str) -> Value {
    json!({
        "title": title,
        "description": "front door camera",
        "categories": ["video", "burglary"],
        "recorded_at": "2026-11-01T10:00:00Z",
        "exif": { "make": "Axon" },
        "clips": [{ "start": 1, "end": 5, "label": "clip-secret" }],
        "markers": [{ "at": 3, "label": "marker-secret" }],
        "notes": ["evidence-note-secret"],
        "tags": ["evidence-tag-secret"],
        "gps": { "lat": 47.6062, "lon": -122.3321 },
        "custom_metadata": { "k": "custom-secret" },
        "device_metadata": { "serial": "device-secret" },
        "community_request": { "caption": "caption text", "pii": { "name": "Pii Name-secret", "date_of_birth": "1990-01-01", "email": "pii@secret.example", "phone": "+1-555-0100" } },
        "transcript": "transcript-secret words",
        "content": { "sha256": "a".repeat(64), "size_bytes": 1024, "uri": "s3://bucket/uri-secret" }
    })
}

/// A folder tree with items in it, as many tests start from ("ladders": a
/// folder, its subfolder, a sibling, an item on each rung and one at the
/// root), built through the API by [`Tree::build`]. Folders are known by
/// name, items by title.
pub struct Tree {
    folders: std::collections::HashMap<String, Uuid>,
    items: std::collections::HashMap<String, Uuid>,
}

impl Tree {
    /// Create `folders` (name, parent's name; a parent comes before its
    /// children) and then `items` (evidence body, folder's name or `None`
    /// for the root) in `case` as `user`. (The items' jobs are the
    /// caller's to wait for: some tests build with no worker running.)
    pub async fn build(
        app: &TestApp,
        user: &str,
        case: Uuid,
        folders: &[(&str, Option<&str>)],
        items: &[(Value, Option<&str>)],
    ) -> Tree {
        let mut tree = Tree {
            folders: Default::default(),
            items: Default::default(),
        };
        for (name, parent) in folders {
            let parent = parent.map(|p| tree.folder(p));
            let id = app.create_folder(user, case, name, parent).await;
            tree.folders.insert(name.to_string(), id);
        }
        for (body, folder) in items {
            let mut body = body.clone();
            if let Some(f) = folder {
                body["folder_id"] = json!(tree.folder(f));
            }
            let title = body["title"]
                .as_str()
                .expect("an item has a title")
                .to_string();
            let (id, _) = app.add_evidence(user, case, body).await;
            tree.items.insert(title, id);
        }
        tree
    }

    /// The usual ladder: folder `top`, `sub` inside it and `sibling` beside
    /// it (`folders`), and one item in each and one at the root (`titles`,
    /// in that order), each made by `body(title)`.
    pub async fn ladder(
        app: &TestApp,
        user: &str,
        case: Uuid,
        folders: [&str; 3],
        titles: [&str; 4],
        body: impl Fn(&str) -> Value,
    ) -> Tree {
        let [top, sub, sibling] = folders;
        Tree::build(
            app,
            user,
            case,
            &[(top, None), (sub, Some(top)), (sibling, None)],
            &[
                (body(titles[0]), Some(top)),
                (body(titles[1]), Some(sub)),
                (body(titles[2]), Some(sibling)),
                (body(titles[3]), None),
            ],
        )
        .await
    }

    /// The folder named `name`.
    pub fn folder(&self, name: &str) -> Uuid {
        *self
            .folders
            .get(name)
            .unwrap_or_else(|| panic!("no folder {name:?} in the tree"))
    }

    /// The items titled `titles`, in that order.
    pub fn items<const N: usize>(&self, titles: [&str; N]) -> [Uuid; N] {
        titles.map(|t| self.item(t))
    }

    /// The item titled `title`.
    pub fn item(&self, title: &str) -> Uuid {
        *self
            .items
            .get(title)
            .unwrap_or_else(|| panic!("no item {title:?} in the tree"))
    }
}

/// A minimal evidence body titled `title`.
pub fn evidence_titled(title: &str) -> Value {
    json!({ "title": title })
}
