/// Signing in with an OpenID Connect provider (authorization code with PKCE).
struct OIDCSignIn: Sendable {
    /// What the sign-in page's button says: "Sign in with …".
    let providerName: String
}
