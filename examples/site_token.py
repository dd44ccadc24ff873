# A Plexor chat token for your signed-in user: a JWT (HS256) signed with your site's secret.
import base64, hashlib, hmac, json, os, sys, time

def plexor_token(secret: str, sub: str, name: str, mod: bool = False) -> str:
    b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": sub, "name": name, "mod": mod, "exp": int(time.time()) + 300}).encode())
    signature = b64(hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest())
    return f"{header}.{claims}.{signature}"

print(plexor_token(os.environ["PLEXOR_SITE_SECRET"], sys.argv[1], sys.argv[2]))
