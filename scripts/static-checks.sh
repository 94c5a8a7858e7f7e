#!/usr/bin/env bash
# Supply chain and static checks (issue 8, item 7). Called from scripts/test.sh.
#
# 1. pip-audit on requirements.lock: every pinned package is looked up in the PyPI
#    vulnerability data (the "pypi" service, i.e. the OSV records PyPI serves).
#    --strict makes a package that could not be audited an error, so an audit that
#    silently saw nothing (no network, registry mirror without the JSON API) fails
#    instead of passing. --no-deps/--disable-pip: the lock is complete and hashed,
#    nothing is resolved or installed.
# 2. bandit on vault/ and api/ at medium severity and above (-ll): every finding is
#    fixed or justified in place with "# nosec BXXX -- reason".
#
# STATIC_CHECKS_OFFLINE=1 skips pip-audit with a loud warning (machines without
# access to the vulnerability data); never set it in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
status=0

if [ "${STATIC_CHECKS_OFFLINE:-0}" = 1 ]; then
  echo "static-checks: WARNING: pip-audit SKIPPED (STATIC_CHECKS_OFFLINE=1)" >&2
else
  echo "static-checks: pip-audit -r requirements.lock"
  if ! "$PY" -m pip_audit -r requirements.lock --no-deps --disable-pip --strict \
      --progress-spinner off; then
    echo "static-checks: pip-audit FAILED (known vulnerability, or a package could not be audited)" >&2
    status=1
  fi
fi

echo "static-checks: bandit -r vault api -ll"
if ! "$PY" -m bandit -q -r vault api -ll; then
  echo "static-checks: bandit FAILED" >&2
  status=1
fi
exit $status
