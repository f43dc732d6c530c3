// An independent OpenID Connect relying party for tests/test_oidc_node.py: Node's
// openid-client (OpenID Certified), nothing of mimsdir's. It makes its own PKCE verifier,
// state and nonce, keeps them in memory, and checks what comes back itself.
//
//   node rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// 1. prints one JSON line: {"authorization_url": ...} (PKCE S256, state, nonce);
// 2. reads one line on stdin: the URL the portal sent the browser back to;
// 3. exchanges the code (authorizationCodeGrant with the expected state, nonce and PKCE
//    verifier; the "iss" response parameter, RFC 9207, is checked against discovery), checks
//    the ID token (signature against the JWKS, iss, aud, exp, iat, nonce), calls userinfo
//    (whose sub must be the ID token's), refreshes, and tries the used refresh token again;
// 4. prints one JSON line with what it saw, or {"error": ...} and exits 1.
import * as client from 'openid-client'
import * as readline from 'node:readline'

const [issuer, clientId, clientSecret, redirectUri] = process.argv.slice(2)

async function main () {
  const config = await client.discovery(
    new URL(issuer), clientId, clientSecret, client.ClientSecretPost(clientSecret),
    // http is allowed here only because the portal under test is on loopback.
    { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] })
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email profile mims offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce
  })
  console.log(JSON.stringify({ authorization_url: url.href }))

  const rl = readline.createInterface({ input: process.stdin })
  const callback = await new Promise((resolve) => rl.once('line', resolve))
  rl.close()

  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true
  })
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  let reuse = 'accepted'
  try {
    await client.refreshTokenGrant(config, tokens.refresh_token)
  } catch (e) {
    reuse = e.error || e.code || String(e)
  }
  console.log(JSON.stringify({
    id_token_claims: claims,
    userinfo,
    token_type: tokens.token_type,
    scope: tokens.scope,
    expires_in: tokens.expires_in,
    refresh_rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
    refreshed_access_token_differs: refreshed.access_token !== tokens.access_token,
    used_refresh_token_again: reuse
  }))
}

main().catch((e) => {
  console.log(JSON.stringify({ error: e.code || e.name, message: e.message, cause: e.cause }))
  process.exit(1)
})
