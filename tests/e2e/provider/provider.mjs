// The OpenID Certified provider (node `oidc-provider`) the end-to-end tests sign in against.
//
// Started by tests/e2e/harness.py on 127.0.0.1 with everything it needs in the environment:
//   PORT                       where to listen (the issuer is http://127.0.0.1:PORT)
//   CLIENT_ID, CLIENT_SECRET   the app's confidential client (client_secret_basic)
//   REDIRECT_URIS              comma-separated callback URLs of the app instances
//   POST_LOGOUT_REDIRECT_URIS  comma-separated URLs the provider may return to after sign-out
//   ACCESS_TOKEN_TTL           access token lifetime in seconds (default 3600)
//   ADMIN_SECRET               bearer secret for the /__test/ routes below
//   BACKCHANNEL_LOGOUT_URI     optional: the client's Back-Channel Logout 1.0 endpoint
//
// The claims request parameter is on (claims_parameter_supported: true): a sign-in that asks for
// auth_time gets it in its ID token.
//
// Its login, consent and sign-out pages are the library's own (devInteractions): the login
// form takes any `login` and `password`, and the account id is the login.
//
// Refresh tokens rotate: every refresh grant consumes the presented token and issues a new one,
// and presenting a consumed token again revokes the whole grant (the new token included).
// With BACKCHANNEL_LOGOUT_URI set, ID tokens carry `sid` and ending a provider session POSTs a
// logout token (typ logout+jwt, with `sub` and that session's `sid`) to the URI.
//
// Test-only routes (Authorization: Bearer ADMIN_SECRET), on the same port:
//   PUT  /__test/accounts/:sub/access-token-ttl  {"seconds": N}  tokens issued to :sub from now on
//   POST /__test/accounts/:sub/revoke            drop :sub's grants, refresh and access tokens
//   GET  /__test/accounts/:sub                   what the provider holds and did for :sub
//   GET  /__test/accounts/:sub/sessions          :sub's live provider sessions, with the client's sid
//   POST /__test/accounts/:sub/end-sessions      end them as the sign-out page would, back-channel included
//   POST /__test/accounts/:sub/age-sessions      {"seconds": N}  as if :sub had signed in N s earlier (max_age)
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    throw new Error(`${name} must be set`);
  }
  return value;
};
const list = (value) => value.split(',').map((item) => item.trim()).filter(Boolean);

const port = Number(env('PORT'));
const issuer = `http://127.0.0.1:${port}`;
const defaultAccessTokenTtl = Number(env('ACCESS_TOKEN_TTL', '3600'));
const adminSecret = env('ADMIN_SECRET');
const clientId = env('CLIENT_ID');
const backchannelLogoutUri = env('BACKCHANNEL_LOGOUT_URI', '');

// Per-account test state: shorter access tokens, and what the provider did.
const accessTokenTtl = new Map();
const refreshGrants = new Map();
const refreshReuse = new Map();
const backchannelLogouts = new Map();
const increment = (counts, accountId) => counts.set(accountId, (counts.get(accountId) ?? 0) + 1);

// A plain Map-backed adapter (the bundled one is an LRU capped at 1000 entries, and cannot
// be searched by account, which the revoke route needs).
const records = new Map();
const nowSeconds = () => Math.floor(Date.now() / 1000);

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? nowSeconds() + expiresIn : Infinity;
    records.set(this.key(id), { model: this.model, payload, expiresAt });
  }

  async find(id) {
    const record = records.get(this.key(id));
    if (!record) return undefined;
    if (record.expiresAt <= nowSeconds()) {
      records.delete(this.key(id));
      return undefined;
    }
    return record.payload;
  }

  async findByUid(uid) {
    for (const record of records.values()) {
      if (record.model === this.model && record.payload.uid === uid && record.expiresAt > nowSeconds()) {
        return record.payload;
      }
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const record of records.values()) {
      if (record.model === this.model && record.payload.userCode === userCode && record.expiresAt > nowSeconds()) {
        return record.payload;
      }
    }
    return undefined;
  }

  async consume(id) {
    const record = records.get(this.key(id));
    if (record) record.payload.consumed = nowSeconds();
  }

  async destroy(id) {
    records.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [key, record] of records) {
      if (record.payload.grantId === grantId) records.delete(key);
    }
  }
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'e2e-rs256', use: 'sig', alg: 'RS256' };

const titleCase = (login) => login.replace(/(^|[-_.\s])(\w)/g, (_, sep, char) => `${sep ? ' ' : ''}${char.toUpperCase()}`);

const configuration = {
  adapter: MapAdapter,
  jwks: { keys: [signingKey] },
  clients: [
    {
      client_id: clientId,
      client_secret: env('CLIENT_SECRET'),
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: list(env('REDIRECT_URIS')),
      post_logout_redirect_uris: list(env('POST_LOGOUT_REDIRECT_URIS', '')),
      // http:// is accepted here (client_schema.js checks backchannel_logout_uri as a web uri,
      // not an https one). session_required makes the library put `sid` in ID tokens and
      // logout tokens (Client#includeSid), so the app can tell which session to end.
      ...(backchannelLogoutUri
        ? { backchannel_logout_uri: backchannelLogoutUri, backchannel_logout_session_required: true }
        : undefined),
    },
  ],
  // The library's outgoing requests (back-channel logout among them) go through an undici
  // dispatcher that destroys any connection to a special-use address, loopback included
  // (helpers/fetch_request.js), so a logout token for http://127.0.0.1:PORT would never
  // arrive. Everything here runs on 127.0.0.1: drop that dispatcher.
  fetch: (url, { dispatcher, ...options }) => globalThis.fetch(url, options),
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: `${sub}@example.test`,
          email_verified: true,
          name: titleCase(sub),
          preferred_username: sub,
          locale: 'en',
          zoneinfo: 'Europe/Paris',
        };
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'locale', 'zoneinfo'],
  },
  // oidc-provider only keeps `offline_access` when the request says prompt=consent; the
  // app's client is confidential and registered for refresh_token, so it always gets one.
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  // A consumed refresh token presented again means it leaked (or the app raced itself): the
  // library then revokes the grant, so the app's current refresh token stops working too.
  rotateRefreshToken: true,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    // OIDC Core 5.5: discovery says claims_parameter_supported: true, so the app asks for auth_time
    // as an essential ID token claim at every sign-in (without it, auth_time comes only with max_age).
    claimsParameter: { enabled: true },
  },
  ttl: {
    AccessToken: (ctx, token) => accessTokenTtl.get(token.accountId) ?? defaultAccessTokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Grant: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
  },
  cookies: { keys: [adminSecret] },
};

const provider = new Provider(issuer, configuration);

provider.on('grant.success', (ctx) => {
  if (ctx.oidc.params.grant_type !== 'refresh_token') return;
  const accountId = ctx.oidc.entities.Account?.accountId;
  if (accountId) increment(refreshGrants, accountId);
});
// The refresh grant loads the token and account before it checks `consumed`, and throws
// InvalidGrant with this detail after revoking the grant (actions/grants/refresh_token.js).
provider.on('grant.error', (ctx, error) => {
  if (ctx.oidc?.params?.grant_type !== 'refresh_token' || error.error_detail !== 'refresh token already used') return;
  const accountId = ctx.oidc.entities.Account?.accountId ?? ctx.oidc.entities.RefreshToken?.accountId;
  if (accountId) increment(refreshReuse, accountId);
});
// Emitted by the sign-out page (actions/end_session.js) and by the end-sessions route below.
const recordBackchannel = (accountId, entry) => {
  if (!backchannelLogouts.has(accountId)) backchannelLogouts.set(accountId, []);
  backchannelLogouts.get(accountId).push(entry);
};
provider.on('backchannel.success', (ctx, client, accountId, sid) => {
  recordBackchannel(accountId, { sid, ok: true, error: null });
});
provider.on('backchannel.error', (ctx, error, client, accountId, sid) => {
  // undici reports connection failures as a bare 'fetch failed'; the reason is in `cause`.
  const message = error.cause?.message ? `${error.message}: ${error.cause.message}` : error.message;
  recordBackchannel(accountId, { sid, ok: false, error: message });
  console.error('backchannel.error', accountId, sid, error);
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

function accountState(sub) {
  const now = nowSeconds();
  const mine = [...records.values()].filter((record) => record.payload.accountId === sub);
  const live = (model) => mine.filter((record) => record.model === model && record.expiresAt > now);
  return {
    sub,
    access_token_ttl: accessTokenTtl.get(sub) ?? defaultAccessTokenTtl,
    live_access_tokens: live('AccessToken').length,
    live_refresh_tokens: live('RefreshToken').filter((record) => !record.payload.consumed).length,
    grants: live('Grant').length,
    refresh_grants: refreshGrants.get(sub) ?? 0,
    refresh_reuse_detected: refreshReuse.get(sub) ?? 0,
    backchannel_logouts: backchannelLogouts.get(sub) ?? [],
  };
}

function liveSessions(sub) {
  const now = nowSeconds();
  return [...records.entries()]
    .filter(([, record]) => record.model === 'Session' && record.payload.accountId === sub && record.expiresAt > now)
    .map(([key, record]) => ({ key, session: record.payload }));
}

// session_id is the provider's `_session` cookie value, so a browser's own session can be
// matched exactly; login_ts only has one-second resolution.
function listSessions(sub) {
  return liveSessions(sub).map(({ session }) => ({
    sid: session.authorizations?.[clientId]?.sid ?? null,
    login_ts: session.loginTs ?? null,
    session_id: session.jti,
  }));
}

// What the sign-out page does when the user confirms (actions/end_session.js `confirm` with
// logout=yes), for every session of the account: a logout token to each client that has a
// back-channel URI, its grant revoked unless it persists logout, then the session destroyed.
async function endSessions(sub) {
  let ended = 0;
  for (const { key, session } of liveSessions(sub)) {
    const deliveries = [];
    for (const [authorizedClientId, authorization] of Object.entries(session.authorizations ?? {})) {
      const client = await provider.Client.find(authorizedClientId);
      if (client?.backchannelLogoutUri) {
        deliveries.push(client.backchannelLogout(sub, authorization.sid).then(
          () => provider.emit('backchannel.success', undefined, client, sub, authorization.sid),
          (error) => provider.emit('backchannel.error', undefined, error, client, sub, authorization.sid),
        ));
      }
      if (authorization.grantId && !authorization.persistsLogout) revokeGrant(authorization.grantId);
    }
    await Promise.all(deliveries);
    records.delete(key);
    ended += 1;
  }
  return ended;
}

// helpers/revoke.js, on the shared records: the grant and every token issued under it.
function revokeGrant(grantId) {
  for (const [key, record] of records) {
    if (record.payload.grantId === grantId) records.delete(key);
  }
  records.delete(`Grant:${grantId}`);
}

function revokeAccount(sub) {
  let revoked = 0;
  for (const [key, record] of records) {
    if (record.payload.accountId === sub && record.model !== 'Session') {
      records.delete(key);
      revoked += 1;
    }
  }
  return revoked;
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
}

async function admin(req, res) {
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.headers.authorization !== `Bearer ${adminSecret}`) return reply(401, { error: 'admin secret required' });
  const match = /^\/__test\/accounts\/([^/]+)(\/[a-z-]+)?$/.exec(new URL(req.url, issuer).pathname);
  if (!match) return reply(404, { error: 'no such test route' });
  const sub = decodeURIComponent(match[1]);
  const action = `${req.method} ${match[2] ?? ''}`;
  if (action === 'GET ') return reply(200, accountState(sub));
  if (action === 'POST /revoke') return reply(200, { revoked: revokeAccount(sub), ...accountState(sub) });
  if (action === 'GET /sessions') return reply(200, listSessions(sub));
  if (action === 'POST /end-sessions') return reply(200, { ended: await endSessions(sub), ...accountState(sub) });
  if (action === 'POST /age-sessions') {
    const { seconds } = await readJson(req);
    if (!Number.isInteger(seconds) || seconds <= 0) return reply(400, { error: 'seconds must be a positive integer' });
    // The library reads loginTs for max_age (Session#past) and for the ID token's auth_time.
    for (const { session } of liveSessions(sub)) session.loginTs -= seconds;
    return reply(200, listSessions(sub));
  }
  if (action === 'PUT /access-token-ttl') {
    const { seconds } = await readJson(req);
    if (!Number.isInteger(seconds) || seconds <= 0) return reply(400, { error: 'seconds must be a positive integer' });
    accessTokenTtl.set(sub, seconds);
    return reply(200, accountState(sub));
  }
  return reply(405, { error: `unsupported: ${action}` });
}

const handle = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__test/')) {
    admin(req, res).catch((error) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(error) }));
    });
    return;
  }
  handle(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

// Keep-alive connections from the app would hold close() open: end them too.
const shutdown = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
