"""Schema fuzzing, short CI run (issue 8, item 3): schemathesis against the served
OpenAPI document (/schema/openapi.json), once per staff role, as an applicant and
anonymously, on both profiles. Zero 5xx and zero response-schema violations.

The long run (>= 5,000 requests) is ``tools/fuzz_api.py``; see its docstring.
"""

from __future__ import annotations

from tools.fuzz_api import ROLES, fuzz, provision, served
from vault.service import Vault

#: Examples per operation and credential: keeps the run well under a minute per
#: profile on two cores while still touching every operation with every role.
CI_EXAMPLES = 2


def test_schema_fuzzing_every_role_no_server_error_no_schema_violation(vault: Vault) -> None:
    from api.app import create_app

    tokens = provision(vault)
    assert set(tokens) == {*ROLES, "applicant", "anonymous"}
    with served(create_app(vault=vault)) as base_url:
        report = fuzz(base_url, tokens, max_examples=CI_EXAMPLES, seed=1)
    print(report.table())
    assert report.operations >= 30
    assert all(report.requests[role] >= report.operations for role in tokens)
    assert not report.failures, report.table()
    assert not [s for s in report.statuses if s >= 500]
