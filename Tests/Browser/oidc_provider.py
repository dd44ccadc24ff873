"""A small OpenID Connect provider for the browser tests, on loopback: the
authorization code flow with PKCE (S256) for one confidential client, ID
tokens signed HS256 with the client's secret. It refuses anything else, so a
gateway that gets a token from it spoke the protocol right."""

import base64
import hashlib
import hmac
import html
import http.server
import json
import secrets
import threading
import time
import urllib.parse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Provider:
    def __init__(self, client_id, client_secret, redirect_uri, subject="olga-1", name="Olga Provider"):
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.subject = subject
        self.name = name
        self.codes = {}
        self.tokens_issued = 0
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body, content_type="application/json", headers=()):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/.well-known/openid-configuration":
                    self.reply(200, json.dumps({"issuer": provider.issuer, "authorization_endpoint": provider.issuer + "/authorize",
                                                "token_endpoint": provider.issuer + "/token",
                                                "code_challenge_methods_supported": ["S256"]}))
                elif url.path == "/authorize":
                    problem = provider.authorization_problem(query)
                    if problem:
                        return self.reply(400, problem, "text/plain")
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = query
                    target = provider.redirect_uri + "?" + urllib.parse.urlencode({"code": code, "state": query["state"]})
                    self.reply(200, f'<!doctype html><title>Test ID</title><p>Sign in to Plexor as {html.escape(provider.name)}?</p>'
                                    f'<a id="approve" href="{html.escape(target)}">Approve</a>', "text/html")
                else:
                    self.reply(404, "{}")

            def do_POST(self):
                if self.path != "/token":
                    return self.reply(404, "{}")
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                expected = "Basic " + base64.b64encode(f"{provider.client_id}:{provider.client_secret}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self.reply(401, json.dumps({"error": "invalid_client"}))
                request = provider.codes.pop(form.get("code"), None)
                if (request is None or form.get("grant_type") != "authorization_code" or form.get("redirect_uri") != provider.redirect_uri
                        or b64url(hashlib.sha256(form.get("code_verifier", "").encode()).digest()) != request["code_challenge"]):
                    return self.reply(400, json.dumps({"error": "invalid_grant"}))
                now = int(time.time())
                claims = {"iss": provider.issuer, "aud": provider.client_id, "sub": provider.subject, "name": provider.name,
                          "nonce": request["nonce"], "iat": now, "exp": now + 300}
                header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
                body = b64url(json.dumps(claims).encode())
                signature = b64url(hmac.new(provider.client_secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest())
                provider.tokens_issued += 1
                self.reply(200, json.dumps({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                            "id_token": f"{header}.{body}.{signature}"}))

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def authorization_problem(self, query):
        if query.get("response_type") != "code" or query.get("client_id") != self.client_id:
            return "unknown client or response type"
        if query.get("redirect_uri") != self.redirect_uri:
            return "redirect_uri is not registered"
        if query.get("code_challenge_method") != "S256" or len(query.get("code_challenge", "")) != 43:
            return "PKCE with S256 is required"
        if not query.get("state") or not query.get("nonce") or "openid" not in query.get("scope", "").split():
            return "state, nonce and the openid scope are required"
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()
