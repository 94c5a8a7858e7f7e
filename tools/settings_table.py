"""Print the README's table of VAULT_* settings from vault.config (the single source)."""

from __future__ import annotations

from vault.config import describe_settings


def table() -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, default, doc in describe_settings():
        rows.append(f"| `{name}` | {f'`{default}`' if default else ''} | {doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(table(), end="")
