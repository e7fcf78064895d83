// An independent, OpenID Certified provider (panva/oidc-provider) on 127.0.0.1, for the
// interoperability test in main.rs. Not App ID: nothing here knows about tenants, `ver`
// headers or a management API.
//
// Environment (set by main.rs):
//   INTEROP_REDIRECT_URI              the apps' /afterauth URLs, space-separated (registered for
//                                     both clients)
//   INTEROP_POST_LOGOUT_REDIRECT_URI  the apps' /signed_out URLs, space-separated
//   INTEROP_CLIENT_SECRET             the confidential clients' secret
//   INTEROP_INTROSPECTION             "off": no introspection endpoint (default: on)
// Prints one JSON line {"issuer": "http://127.0.0.1:<port>"} once it listens.
// GET /__interop/stats answers what the test asserts about the provider's side: how many
// JWT access tokens were issued, opaque ones stored, and introspection requests answered.
//
// Two confidential clients (client_secret_basic), which differ in their access tokens:
//   interop-jwt     JWT access tokens (RFC 9068, typ at+jwt) for a default resource
//                   indicator whose audience is the client itself, carrying a `roles` claim;
//                   oidc-provider issues opaque access tokens unless a resource server
//                   asks for the JWT format.
//   interop-opaque  opaque access tokens (the default): the app must introspect them, as
//                   it does for any `oidc` provider that lists an introspection endpoint.
// Both get a `roles` claim in the id_token (`claims` maps it to the `openid` scope, and
// conformIdTokenClaims: false puts scope claims into the id_token even though an access
// token is issued, so the app needs no userinfo call).
//
// Sign-in uses oidc-provider's development interactions: a login form that accepts any
// login and password (the login becomes the subject), then a consent form.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const need = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};
const redirectUri = need('INTEROP_REDIRECT_URI');
const postLogoutRedirectUri = need('INTEROP_POST_LOGOUT_REDIRECT_URI');
const clientSecret = need('INTEROP_CLIENT_SECRET');

// The accounts the login form knows; any other login signs in a user without roles.
const USERS = {
  alice: { name: 'Alice Interop', email: 'alice@interop.example', roles: ['user'] },
  carol: { name: 'Carol Interop', email: 'carol@interop.example', roles: ['admin', 'user'] },
  bob: { name: 'Bob Interop', email: 'bob@interop.example', roles: [] },
};
const userOf = (id) => USERS[id] ?? { name: id, roles: [] };

// The resource server whose JWT access tokens the app verifies itself.
const RESOURCE = 'urn:rocket-appid:interop';

// A fresh RSA signing key per run (the app accepts RS256 only).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-rs256', alg: 'RS256', use: 'sig' };

const client = (clientId) => ({
  client_id: clientId,
  client_secret: clientSecret,
  redirect_uris: redirectUri.split(' '),
  post_logout_redirect_uris: postLogoutRedirectUri.split(' '),
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['authorization_code'],
  response_types: ['code'],
});

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [client('interop-jwt'), client('interop-opaque')],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub', 'name', 'email', 'roles'] },
    conformIdTokenClaims: false,
    async findAccount(_ctx, id) {
      const user = userOf(id);
      return {
        accountId: id,
        async claims() {
          return { sub: id, name: user.name, email: user.email, roles: user.roles };
        },
      };
    },
    // Into JWT access tokens, and into the introspection answer for opaque ones.
    async extraTokenClaims(_ctx, token) {
      return token.accountId ? { roles: userOf(token.accountId).roles } : undefined;
    },
    features: {
      devInteractions: { enabled: true },
      introspection: { enabled: process.env.INTEROP_INTROSPECTION !== 'off' },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        async defaultResource(_ctx, client, oneOf) {
          if (oneOf) return oneOf;
          return client.clientId === 'interop-jwt' ? RESOURCE : undefined;
        },
        // With scope `openid`, the code's resource is used at the token endpoint only when
        // this says so (otherwise the access token would be for userinfo, and opaque).
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(_ctx, resource, client) {
          if (resource !== RESOURCE) throw new Error('unknown resource');
          return {
            scope: 'api',
            audience: client.clientId,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  provider.on('server_error', (_ctx, error) => console.error('provider server_error:', error));
  const stats = { jwt_access_tokens: 0, opaque_access_tokens: 0, introspections: 0 };
  // `issued` fires for structured (JWT) tokens, `saved` for opaque ones kept by the adapter.
  provider.on('access_token.issued', () => { stats.jwt_access_tokens += 1; });
  provider.on('access_token.saved', () => { stats.opaque_access_tokens += 1; });
  provider.on('introspection.error', (_ctx, error) => console.error('introspection error:', error.message));
  provider.use(async (ctx, next) => {
    if (ctx.path === '/__interop/stats') {
      ctx.body = stats;
      return;
    }
    if (ctx.path === '/token/introspection') stats.introspections += 1;
    await next();
  });
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer }));
});
