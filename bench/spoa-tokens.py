"""Keys and tokens for bench/spoa.sh, made with python3-jwt (not the agent's
libjwt). Reuses the integration tests' key set (tests/integration/keys.py):
an HMAC secret and an RSA 2048 public key PEM, generated fresh in FOLDER.

Writes into FOLDER: hmac.secret, hmac.secret.txt (the secret alone, for
HAProxy's jwt_verify), rsa.pub.pem, and token files, one JWT per line:
hs256-one.txt / rs256-one.txt (one token, for cache hits) and
hs256-many.txt / rs256-many.txt (COUNT unique tokens, distinct `sub`).
Tokens expire in an hour, longer than any run.

Usage: /usr/bin/python3 bench/spoa-tokens.py FOLDER COUNT
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import keys  # noqa: E402

TTL = 3600


def write_tokens(path, make, count):
    with open(path, "w") as f:
        for i in range(count):
            f.write(make(sub=f"bench-user-{i}", ttl=TTL) + "\n")


def main():
    folder, count = sys.argv[1], int(sys.argv[2])
    ks = keys.KeySet(folder)
    with open(os.path.join(folder, "hmac.secret.txt"), "wb") as f:
        f.write(ks.hmac_secret)
    hs = lambda **kw: keys.hs256(ks, **kw)  # noqa: E731
    rs = lambda **kw: keys.rs256(ks, **kw)  # noqa: E731
    write_tokens(os.path.join(folder, "hs256-one.txt"), hs, 1)
    write_tokens(os.path.join(folder, "rs256-one.txt"), rs, 1)
    write_tokens(os.path.join(folder, "hs256-many.txt"), hs, count)
    write_tokens(os.path.join(folder, "rs256-many.txt"), rs, count)


if __name__ == "__main__":
    main()
