"""A first share, step by step, through a client generated from the served
OpenAPI document (openapi-python-client): two agencies, a policy, a case with
a file, a share, the received case, a download, an import, a revoke.

Run by the `clients` integration test (and by hand: see the README's "First
share"). Environment: CASESHARE_URL, CASESHARE_SERVICE_TOKEN; the generated
package `caseshare_client` on PYTHONPATH.
"""

import hashlib
import os
import sys
import time
import uuid

from caseshare_client import AuthenticatedClient
from caseshare_client.api.admin import complete_setup
from caseshare_client.api.bootstrap import create_org, create_partnership, create_user
from caseshare_client.api.cases import add_evidence, create_case
from caseshare_client.api.evidence import get_content
from caseshare_client.api.link_sharing import put_content
from caseshare_client.api.ops import get_job
from caseshare_client.api.receiving import import_, import_details, list_received
from caseshare_client.api.sharing import create_share, get_receipt, get_share, revoke_share
from caseshare_client.models import (
    Content,
    NewCase,
    NewEvidence,
    NewOrg,
    NewPartnership,
    NewUser,
    OrgKind,
    Policy,
    Role,
    ScopeCase,
    ScopeCaseKind,
    SetupRequest,
    ShareRequest,
    TargetPartner,
    TargetPartnerKind,
)
from caseshare_client.types import File

URL = os.environ["CASESHARE_URL"]
SERVICE = AuthenticatedClient(base_url=URL, token=os.environ["CASESHARE_SERVICE_TOKEN"])


def step(text):
    print(f"==> {text}", flush=True)


def expect(response, status):
    """The parsed answer of `response`, which must have `status`."""
    if response.status_code != status:
        sys.exit(f"expected {status}, got {response.status_code}: {response.content!r}")
    return response.parsed


def eventually(what, check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def agency(name):
    domain = name.lower().replace(" ", "-") + ".example"
    org = expect(
        create_org.sync_detailed(
            client=SERVICE,
            body=NewOrg(name=name, kind=OrgKind.LEA, email_domains=[domain],
                        notification_email=f"desk@{domain}"),
        ),
        201,
    )
    admin = expect(
        create_user.sync_detailed(
            org.id, client=SERVICE,
            body=NewUser(name=f"{name} Admin", email=f"admin@{domain}", role=Role.ADMIN),
        ),
        201,
    )
    print(f"    {name}: org {org.id}, admin token {admin.token[:6]}…")
    return org, AuthenticatedClient(base_url=URL, token=admin.token)


def policy(everything):
    return Policy.from_dict({
        "name": "everything" if everything else "nothing",
        "permissions": {"copy_download": everything, "sender_audit_trail": everything,
                        "internal_share": everything},
        "case_terms": {"case_notes": everything, "case_tags": everything},
        "evidence_terms": {k: everything for k in [
            "clips_markers", "evidence_notes", "evidence_tags", "gps", "custom_metadata",
            "device_metadata", "community_request_pii", "transcript"]},
    })


step("Two agencies and their admins (service token)")
alpha, alpha_admin = agency("Alpha PD")
beta, beta_admin = agency("Beta PD")
expect(create_partnership.sync_detailed(client=SERVICE,
                                        body=NewPartnership(org_ids=[alpha.id, beta.id])), 201)

step("Each admin completes sharing setup: a default policy; Beta reviews before importing")
expect(complete_setup.sync_detailed(client=alpha_admin,
                                    body=SetupRequest(default_policy=policy(True), auto_import=False)), 201)
expect(complete_setup.sync_detailed(client=beta_admin,
                                    body=SetupRequest(default_policy=policy(True), auto_import=False)), 201)

step("Alpha opens a case and adds a video with its file")
case = expect(create_case.sync_detailed(
    client=alpha_admin, body=NewCase(case_number="CN-1", title="Burglary, 12 Elm St")), 201)
video = os.urandom(200_000)
sha = hashlib.sha256(video).hexdigest()
item = expect(add_evidence.sync_detailed(
    case.id, client=alpha_admin,
    body=NewEvidence(title="Doorbell video", content=Content(sha256=sha)),
    idempotency_key=str(uuid.uuid4())), 202)
stored = expect(put_content.sync_detailed(
    item.id, client=alpha_admin,
    body=File(payload=video, file_name="doorbell.mp4", mime_type="video/mp4")), 200)
assert stored.sha256 == sha, stored
print(f"    case {case.id}, evidence {item.id}, {stored.size_bytes} bytes")

step("Alpha shares the whole case with Beta; the answer says processing, a worker completes it")
share = expect(create_share.sync_detailed(
    case.id, client=alpha_admin,
    body=ShareRequest(scope=ScopeCase(kind=ScopeCaseKind.CASE),
                      target=TargetPartner(kind=TargetPartnerKind.PARTNER, org_id=beta.id))), 202)
print(f"    share {share.id}: {share.status.value}")
done = eventually("the share to complete", lambda: (
    (s := get_share.sync(share.id, client=alpha_admin)) and s.status.value == "complete" and s))
print(f"    share {done.id}: {done.status.value}")

step("Beta sees the received case and reads the file (read-only, as the policy allows)")
received = eventually("the received case", lambda: (
    (r := list_received.sync(client=beta_admin)) and r.items and r.items[0]))
print(f"    received {received.id} from {received.sharing_org.name}: {received.state.value}")
body = expect(get_content.sync_detailed(item.id, client=beta_admin), 200)
assert hashlib.sha256(body.payload.read()).hexdigest() == sha
print("    the file's SHA-256 matches")

step("Beta imports the case into its own records; the file travels with it")
accepted = expect(import_.sync_detailed(received.id, client=beta_admin), 202)
eventually("the import job", lambda: (
    (j := get_job.sync(accepted.job_id, client=beta_admin)) and j.status.value == "complete"))
copy = eventually("the imported copy", lambda: (
    (r := list_received.sync(client=beta_admin)) and r.items[0].imported_case_id))
details = expect(import_details.sync_detailed(copy, client=beta_admin), 200)
print(f"    imported copy {copy}, state {details.state.value}, policy {details.sharing_policy.name}")
receipt = eventually("the signed custody receipt", lambda: (
    (r := get_receipt.sync_detailed(share.id, client=alpha_admin)).status_code == 200
    and r.parsed.acknowledgement and r.parsed))
print(f"    custody receipt signed with {receipt.key_id}, acknowledged by Beta")

step("Alpha revokes the share: Beta's received case stops updating")
expect(revoke_share.sync_detailed(share.id, client=alpha_admin), 202)
eventually("the revocation", lambda: (
    (r := list_received.sync(client=beta_admin)) and r.items[0].state.value == "revoked"))
print("    revoked")
print("first share: done")
