"""Authentication modes (local, required, disabled, the insecure-bind refusal) and JWTs
(HS256 secret, ES256 from a JWKS file, RS256 from a PEM key), through the ASGI app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from db import keys
from db.engine import create_engine, create_session_factory
from graph.app import create_app
from graph.security.local_mode import InsecureBindError, is_loopback
from graph.settings import Settings
from tests.fakes import scripted

pytestmark = pytest.mark.anyio

TASKS = "{ tasks { totalCount } }"
GENERATE = "mutation($input: GeneratePostInput!) { generatePost(input: $input) { id owner } }"
INPUT = {"paperTitle": "Attention Is All You Need"}
ISSUER, AUDIENCE = "https://id.example.com/", "postassist"
SECRET = "s3cret-s3cret-s3cret-s3cret-32b!"
OTHER_SECRET = "another-secret-another-secret-32"


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database_url, "auth_cache_seconds": 0.0}
    return Settings(**{**values, **overrides}, _env_file=None)


@asynccontextmanager
async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, model_factory=lambda: scripted())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def post(
    client: httpx.AsyncClient, query: str, token: str | None = None, **variables: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


async def new_key(database_url: str, name: str = "ci") -> str:
    engine = create_engine(database_url)
    async with create_session_factory(engine)() as session:
        _, token = await keys.create_key(session=session, name=name)
    await engine.dispose()
    return token


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "example.com", ""]))


async def test_local_mode_then_a_key_makes_authentication_required(sqlite_url: str) -> None:
    async with client_of(settings_for(sqlite_url)) as client:
        assert client.app.state.services.auth.mode == "local"  # type: ignore[attr-defined]
        created = (await post(client, GENERATE, input=INPUT)).json()
        assert created["data"]["generatePost"]["owner"] == "local"
        # A token sent in local mode is still checked.
        assert (await post(client, TASKS, "pa_00000000_wrong")).status_code == 401
        token = await new_key(sqlite_url)
        assert (await post(client, TASKS)).status_code == 401  # switched to required
        body = (await post(client, TASKS, token)).json()
        assert body["data"]["tasks"]["totalCount"] == 0  # the local task is not the key's


async def test_local_mode_serves_only_requests_made_on_this_machine(sqlite_url: str) -> None:
    async with client_of(settings_for(sqlite_url)) as client:
        assert (await post(client, TASKS)).status_code == 200
        proxied = await client.post(
            "/graphql", json={"query": TASKS}, headers={"X-Forwarded-For": "203.0.113.9"}
        )
        assert proxied.status_code == 401
        assert "local mode" in proxied.json()["errors"][0]["message"]
        # Served on every interface (uvicorn --host 0.0.0.0) and reached from outside with
        # a spoofed Host: the socket's own address is not loopback.
        outside = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=client.app),  # type: ignore[attr-defined]
            base_url="http://10.0.0.5",
            headers={"Host": "localhost"},
        )
        async with outside:
            assert (await outside.post("/graphql", json={"query": TASKS})).status_code == 401
    with pytest.raises(InsecureBindError, match="ALLOWED_HOSTS"):
        async with client_of(settings_for(sqlite_url, allowed_hosts=["api.example.com"])):
            pass


async def test_a_public_bind_without_auth_refuses_to_start(sqlite_url: str) -> None:
    with pytest.raises(InsecureBindError, match=r"refusing to serve on 0\.0\.0\.0"):
        async with client_of(settings_for(sqlite_url, host="0.0.0.0")):
            pass
    async with client_of(settings_for(sqlite_url, host="0.0.0.0", auth_disabled=True)) as client:
        assert client.app.state.services.auth.mode == "disabled"  # type: ignore[attr-defined]
        assert (await post(client, TASKS, "anything")).status_code == 200
    await new_key(sqlite_url)
    async with client_of(settings_for(sqlite_url, host="0.0.0.0")) as client:
        assert client.app.state.services.auth.mode == "required"  # type: ignore[attr-defined]
        assert (await post(client, TASKS)).status_code == 401


def hs256_signature(secret: str) -> str:
    """The signature part of a token signed with another secret."""
    return jwt.encode({"sub": "x"}, secret, algorithm="HS256").rsplit(".", 1)[1]


def hs256(claims: dict[str, Any]) -> str:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300}
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


async def test_hs256_jwts(sqlite_url: str) -> None:
    settings = settings_for(
        sqlite_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_secret=SECRET, host="0.0.0.0"
    )
    async with client_of(settings) as client:
        created = (await post(client, GENERATE, hs256({}), input=INPUT)).json()
        assert created["data"]["generatePost"]["owner"] == "jwt:user-1"
        other = (await post(client, TASKS, hs256({"sub": "user-2"}))).json()
        assert other["data"]["tasks"]["totalCount"] == 0
        admin = await post(client, TASKS, hs256({"sub": "ops", "scope": "postassist:admin"}))
        assert admin.json()["data"]["tasks"]["totalCount"] == 1
        now = int(time.time())
        for bad in (
            hs256({"aud": "someone-else"}),
            hs256({"iss": "https://evil.example.com/"}),
            hs256({"exp": now - 3600}),
            jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x"}, SECRET, algorithm="HS256"),
            hs256({"sub": "x"}).rsplit(".", 1)[0] + "." + hs256_signature(OTHER_SECRET),
            jwt.encode({"iss": ISSUER, "sub": "x", "exp": now + 60}, None, algorithm="none"),
        ):
            response = await post(client, TASKS, bad)
            assert response.status_code == 401, (bad, response.text)
            assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_jwt_claims_are_read_strictly(sqlite_url: str, tmp_path: Path) -> None:
    settings = settings_for(
        sqlite_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_secret=SECRET, host="0.0.0.0"
    )
    async with client_of(settings) as client:
        await post(client, GENERATE, hs256({"sub": "someone"}), input=INPUT)
        for admin_claims in ({"scp": ["openid", "postassist:admin"]},
                             {"scp": "openid postassist:admin"}):  # fmt: skip
            body = (await post(client, TASKS, hs256({"sub": "ops", **admin_claims}))).json()
            assert body["data"]["tasks"]["totalCount"] == 1, admin_claims
        for not_admin in ({"scope": ["postassist:admin-ish"]}, {"scope": {"a": 1}}):
            body = (await post(client, TASKS, hs256({"sub": "u", **not_admin}))).json()
            assert body["data"]["tasks"]["totalCount"] == 0, not_admin
        assert (await post(client, TASKS, hs256({"sub": "  "}))).status_code == 401


async def test_a_jwks_key_of_another_type_is_refused_not_a_crash(
    sqlite_url: str, tmp_path: Path
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "rsa", "alg": "RS256"}]}))
    settings = settings_for(
        sqlite_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_file=jwks
    )
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60}
    es256 = jwt.encode(
        claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "rsa"}
    )
    async with client_of(settings) as client:
        response = await post(client, TASKS, es256)
        assert response.status_code == 401, response.text
        assert (await post(client, TASKS, jwt.encode(claims, rsa_key, algorithm="RS256",
                headers={"kid": "rsa"}))).status_code == 200  # fmt: skip


def forge_hs256(claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT signed with `secret` by hand (PyJWT refuses a PEM key as a secret)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{part(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


async def test_es256_from_a_jwks_file_and_rs256_from_a_pem_key(
    sqlite_url: str, tmp_path: Path
) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "ES256", "use": "sig"}]}))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "public.pem"
    pem.write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc", "exp": now + 60}
    for source, token, stranger in (
        (
            {"jwt_jwks_file": jwks},
            jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "k1"}),
            jwt.encode(claims, stranger_key, algorithm="ES256", headers={"kid": "k1"}),
        ),
        (
            {"jwt_public_key_file": pem},
            jwt.encode(claims, rsa_key, algorithm="RS256"),
            # The public key used as an HS256 secret: the classic algorithm confusion.
            forge_hs256(claims, pem.read_bytes()),
        ),
    ):
        settings = settings_for(sqlite_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, **source)
        async with client_of(settings) as client:
            assert (await post(client, TASKS, token)).status_code == 200
            assert (await post(client, TASKS, stranger)).status_code == 401


def test_half_a_jwt_configuration_is_refused(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="JWTs need JWT_ISSUER and one of"):
        settings_for(sqlite_url, jwt_issuer=ISSUER)
    with pytest.raises(ValueError, match="JWTs need JWT_ISSUER and one of"):
        settings_for(sqlite_url, jwt_secret=SECRET)
