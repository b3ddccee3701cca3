"""Test keys and tokens for integration tests, made with python3-jwt and
python3-cryptography (an implementation independent of the agent's libjwt).
Keys are generated fresh for each run into a temporary folder."""
import base64
import json
import os
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def _b64u(n, size=None):
    b = n.to_bytes(size or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class KeySet:
    """An HMAC secret, an RSA key (PEM), and a JWKS with an RSA and an EC key."""

    def __init__(self, folder):
        self.folder = folder
        self.hmac_secret = os.urandom(32).hex().encode()
        self.hmac_file = os.path.join(folder, "hmac.secret")
        with open(self.hmac_file, "wb") as f:
            f.write(self.hmac_secret + b"\n")

        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_pub_pem = self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.rsa_pem_file = os.path.join(folder, "rsa.pub.pem")
        with open(self.rsa_pem_file, "wb") as f:
            f.write(self.rsa_pub_pem)

        self.jwks_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks_ec = ec.generate_private_key(ec.SECP256R1())
        self.jwks_file = os.path.join(folder, "jwks.json")
        self.write_jwks()

    def write_jwks(self, extra=()):
        rn = self.jwks_rsa.public_key().public_numbers()
        en = self.jwks_ec.public_key().public_numbers()
        keys = [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
             "n": _b64u(rn.n), "e": _b64u(rn.e)},
            {"kty": "EC", "kid": "ec-1", "crv": "P-256",
             "x": _b64u(en.x, 32), "y": _b64u(en.y, 32)},
        ] + list(extra)
        tmp = self.jwks_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"keys": keys}, f)
        os.replace(tmp, self.jwks_file)

    def agent_args(self):
        return ["--hmac-secret-file", self.hmac_file, "--pem-key", self.rsa_pem_file,
                "--jwks", self.jwks_file]


def claims(sub="alice", ttl=300, **extra):
    now = int(time.time())
    c = {"sub": sub, "iat": now, "exp": now + ttl}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def hs256(keys, **kw):
    return jwt.encode(claims(**kw), keys.hmac_secret, algorithm="HS256")


def rs256(keys, **kw):
    return jwt.encode(claims(**kw), keys.rsa, algorithm="RS256")


def jwks_rs256(keys, kid="rsa-1", **kw):
    return jwt.encode(claims(**kw), keys.jwks_rsa, algorithm="RS256", headers={"kid": kid})


def jwks_es256(keys, kid="ec-1", **kw):
    return jwt.encode(claims(**kw), keys.jwks_ec, algorithm="ES256", headers={"kid": kid})


def alg_none(**kw):
    h = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    p = base64.urlsafe_b64encode(json.dumps(claims(**kw)).encode()).rstrip(b"=").decode()
    return f"{h}.{p}."


def hs256_with_rsa_public_key(keys, **kw):
    """The key-confusion forgery: HS256 whose HMAC key is the RSA public PEM."""
    h = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    p = base64.urlsafe_b64encode(json.dumps(claims(**kw)).encode()).rstrip(b"=")
    import hashlib
    import hmac
    sig = hmac.new(keys.rsa_pub_pem, h + b"." + p, hashlib.sha256).digest()
    return (h + b"." + p + b"." + base64.urlsafe_b64encode(sig).rstrip(b"=")).decode()


def tamper(token):
    h, p, s = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    body["sub"] = "mallory"
    p2 = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{h}.{p2}.{s}"
