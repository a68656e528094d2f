"""OpenID Connect single sign-on: the authorization code flow with PKCE, state and nonce.

The provider is found by discovery (``{issuer}/.well-known/openid-configuration``); its ID tokens are
checked against its published keys (signature, issuer, audience, expiry, nonce). What the browser
carries between the two legs (state, nonce, PKCE verifier, where to go next) is sealed with the home's
secret key in a short-lived cookie, so any instance can finish a login another one began.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from streampilot.services.context import Context
from streampilot.services.directory import Directory, ExternalUser
from streampilot.services.errors import Forbidden, Unavailable
from streampilot.store.orm import Account

FLOW_COOKIE = "streampilot_sso"
FLOW_MAX_AGE_S = 600
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]


class LoginFailed(Forbidden):
    """The provider's answer cannot log anyone in (says why)."""


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    next_url: str
    started: float


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class SingleSignOn:
    ctx: Context

    @property
    def on(self) -> bool:
        cfg = self.ctx.settings.oidc
        return bool(cfg.issuer and cfg.client_id)

    @property
    def label(self) -> str:
        return self.ctx.settings.oidc.label

    async def _get(self, url: str) -> dict[str, Any]:
        cfg = self.ctx.settings.oidc
        try:
            async with httpx.AsyncClient(timeout=cfg.timeout_s) as http:
                resp = await http.get(url)
            resp.raise_for_status()
            found: dict[str, Any] = resp.json()
            return found
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"the OpenID provider did not answer at {url}: {exc}") from None

    async def _metadata(self) -> dict[str, Any]:
        issuer = (self.ctx.settings.oidc.issuer or "").rstrip("/")
        return await self._get(f"{issuer}/.well-known/openid-configuration")

    # ---- the first leg ----------------------------------------------------------------------------
    async def begin(self, redirect_uri: str, next_url: str) -> tuple[str, str]:
        """The provider's authorization URL to send the browser to, and the sealed flow for its cookie."""
        cfg = self.ctx.settings.oidc
        meta = await self._metadata()
        flow = Flow(
            secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), next_url, time.time()
        )
        params = {
            "response_type": "code",
            "client_id": cfg.client_id,
            "redirect_uri": redirect_uri,
            "scope": cfg.scopes,
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": _challenge(flow.verifier),
            "code_challenge_method": "S256",
        }
        sealed = self.ctx.secrets.seal(json.dumps(flow.__dict__))
        return f"{meta['authorization_endpoint']}?{urlencode(params)}", sealed

    def open_flow(self, sealed: str) -> Flow | None:
        try:
            flow = Flow(**json.loads(self.ctx.secrets.open(sealed)))
        except Exception:  # tampered, foreign or from before a key rotation: start again
            return None
        return flow if time.time() - flow.started < FLOW_MAX_AGE_S else None

    # ---- the second leg ---------------------------------------------------------------------------
    async def finish(self, flow: Flow, state: str, code: str, redirect_uri: str) -> Account:
        """Exchange the code, check the ID token, and log its user in (account and roles synced)."""
        cfg = self.ctx.settings.oidc
        if not secrets.compare_digest(flow.state, state):
            raise LoginFailed("this sign-on answer belongs to another login attempt; log in again")
        meta = await self._metadata()
        try:
            async with httpx.AsyncClient(timeout=cfg.timeout_s) as http:
                resp = await http.post(
                    meta["token_endpoint"],
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": redirect_uri,
                        "code_verifier": flow.verifier,
                    },
                    auth=(cfg.client_id or "", cfg.client_secret or ""),
                )
        except httpx.HTTPError as exc:
            raise Unavailable(f"the OpenID provider's token endpoint did not answer: {exc}") from None
        if resp.status_code != 200:
            said = resp.json().get("error_description", resp.text[:200]) if resp.content else resp.status_code
            raise LoginFailed(f"the OpenID provider refused the code: {said}")
        id_token = resp.json().get("id_token")
        if not id_token:
            raise LoginFailed("the OpenID provider sent no ID token (is the 'openid' scope allowed?)")
        claims = await self._verify(meta, id_token)
        if not secrets.compare_digest(str(claims.get("nonce", "")), flow.nonce):
            raise LoginFailed("the ID token is not for this login (nonce); log in again")
        name = str(claims.get(cfg.username_claim) or claims.get("sub") or "")
        groups = claims.get(cfg.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        email = claims.get("email")
        user = ExternalUser(name, str(email) if email else None, tuple(str(g) for g in groups))
        return await Directory(self.ctx).sync("oidc", user)

    async def _verify(self, meta: dict[str, Any], id_token: str) -> dict[str, Any]:
        cfg = self.ctx.settings.oidc
        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
        except jwt.PyJWTError as exc:
            raise LoginFailed(f"the ID token is not a JWT: {exc}") from None
        keys = (await self._get(meta["jwks_uri"])).get("keys", [])
        chosen = [k for k in keys if kid is None or k.get("kid") == kid]
        if not chosen:
            raise LoginFailed("the ID token is signed with a key the provider does not publish")
        try:
            key = jwt.PyJWK(chosen[0])
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key.key,
                algorithms=_ALGORITHMS,
                audience=cfg.client_id,
                issuer=meta.get("issuer", cfg.issuer),
                options={"require": ["exp", "iat", "sub"]},
                leeway=60,
            )
        except jwt.PyJWTError as exc:
            raise LoginFailed(f"the ID token does not hold: {exc}") from None
        return claims
