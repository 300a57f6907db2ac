"""Drive Ferry's HubSpot simulator with HubSpot's official Python client.

Run by tests/tests/e2e/conformance.rs with:
  HUBSPOT_HOST   the simulator's base URL (the client's `host=`)
  HUBSPOT_TOKEN  an OAuth access token the simulator issued
  WEBHOOK_*      a webhook the simulator sent (body, URI, timestamp, signature)
  CLIENT_SECRET  the sandbox app's client secret
Exits non-zero on the first mismatch.
"""
import os
import sys
import uuid

from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import ApiException
from hubspot.utils.signature import Signature


def check(condition, message):
    if not condition:
        print(f"conformance failure: {message}", file=sys.stderr)
        sys.exit(1)


api = HubSpot(access_token=os.environ["HUBSPOT_TOKEN"], host=os.environ["HUBSPOT_HOST"])
email = f"ada.{uuid.uuid4().hex[:8]}@example.com"

created = api.crm.contacts.basic_api.create(
    simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
        properties={"email": email, "firstname": "Ada", "lastname": "Lovelace"}
    )
)
check(created.id and created.properties["email"] == email, f"create returned {created}")
check(created.created_at is not None and created.updated_at is not None, "timestamps parsed")

got = api.crm.contacts.basic_api.get_by_id(contact_id=created.id, properties=["email", "firstname", "lastname"])
check(got.properties["firstname"] == "Ada", f"get returned {got}")

updated = api.crm.contacts.basic_api.update(
    contact_id=created.id,
    simple_public_object_input=SimplePublicObjectInput(properties={"lastname": "King"}),
)
check(updated.properties["lastname"] == "King", f"update returned {updated}")

for i in range(3):
    api.crm.contacts.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
            properties={"email": f"other{i}.{uuid.uuid4().hex[:6]}@example.com", "lastname": "Other"}
        )
    )

found = api.crm.contacts.search_api.do_search(
    public_object_search_request=PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name="email", operator="EQ", value=email)])],
        properties=["email", "lastname"],
        limit=10,
    )
)
check(found.total == 1 and found.results[0].properties["lastname"] == "King", f"search returned {found}")

paged = api.crm.contacts.search_api.do_search(
    public_object_search_request=PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name="lastname", operator="EQ", value="Other")])],
        limit=2,
    )
)
check(paged.total == 3 and len(paged.results) == 2 and paged.paging.next.after, f"paging returned {paged}")

batch = api.crm.contacts.batch_api.read(
    batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=created.id)], properties=["email"], properties_with_history=[]
    )
)
check(batch.status == "COMPLETE" and len(batch.results) == 1 and batch.results[0].id == created.id, f"batch read returned {batch}")

try:
    api.crm.contacts.basic_api.get_by_id(contact_id="999999999")
    check(False, "a missing contact should raise")
except ApiException as e:
    check(e.status == 404, f"missing contact gave {e.status}")

valid = Signature.is_valid(
    signature=os.environ["WEBHOOK_SIGNATURE"],
    client_secret=os.environ["CLIENT_SECRET"],
    request_body=os.environ["WEBHOOK_BODY"],
    http_uri=os.environ["WEBHOOK_URI"],
    signature_version="v3",
    timestamp=os.environ["WEBHOOK_TIMESTAMP"],
)
check(valid, "the simulator's webhook signature is valid for the official client")
tampered = Signature.is_valid(
    signature=os.environ["WEBHOOK_SIGNATURE"],
    client_secret=os.environ["CLIENT_SECRET"],
    request_body=os.environ["WEBHOOK_BODY"] + " ",
    http_uri=os.environ["WEBHOOK_URI"],
    signature_version="v3",
    timestamp=os.environ["WEBHOOK_TIMESTAMP"],
)
check(not tampered, "a changed body must not verify")
print("conformance passed")
