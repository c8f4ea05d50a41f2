from django.contrib.auth import authenticate

from app.secrets import read_secret


def check_credentials(username: str, password: str):
    """Return the user for these credentials, or None."""
    return authenticate(username=username, password=password)


def service_token() -> str | None:
    return read_secret("service_token")
