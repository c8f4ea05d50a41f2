"""Read secrets mounted by the orchestrator (Docker/Kubernetes secrets), never baked in."""
from pathlib import Path

SECRETS_DIR = Path("/run/secrets")


def read_secret(name: str, default: str | None = None) -> str | None:
    path = SECRETS_DIR / name
    if path.exists():
        return path.read_text().strip()
    return default
