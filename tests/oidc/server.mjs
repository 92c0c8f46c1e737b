// A real OAuth 2.0 authorization server (npm oidc-provider) and a tiny
// SMART-on-FHIR resource server, for rxsync's loopback integration tests
// (tests/it/oidc.rs). See README.md beside this file for what it serves and
// how oidc-provider behaves on refresh, rotation, reuse and revocation.
//
// It listens on 127.0.0.1 with a port of the system's choosing and prints
// exactly one line to stdout once it accepts connections:
//   {"issuer":"http://127.0.0.1:PORT","token_endpoint":...,"revocation_endpoint":...,
//    "introspection_endpoint":...,"userinfo_endpoint":...,"jwks_uri":...,
//    "fhir_base":"http://127.0.0.1:PORT/fhir"}
// Nothing else goes to stdout. It never logs a token or a secret.
//
// Flags: --exit-on-stdin-close (exit when stdin reaches its end, so that a
// test process that dies without cleaning up does not leave it running);
// --redirect-uri URI (added to every client's redirect_uris: rxsync's
// loopback callback, port included); --client-key PEM:KID (a public key of
// client `rxsync-jwt`, which authenticates with private_key_jwt, RS384 for
// an RSA key, ES384 for a P-384 one; give it once per key).

import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const CLIENT_SECRET = 'rxsync-test-secret';
const SCOPE = 'openid offline_access patient/MedicationRequest.rs';
const SCOPES = [
  'openid',
  'offline_access',
  'patient/MedicationRequest.rs',
  'patient/MedicationStatement.rs',
  'patient/MedicationDispense.rs',
  'patient/Medication.rs',
];
const FHIR_TYPES = new Set(['MedicationRequest', 'MedicationStatement', 'MedicationDispense']);
const PAGE_SIZE = 2;
const DEFAULT_ACCESS_TTL = 3600;

// Three package NDCs from samples/ndc/package.txt (the sample dictionary).
const MEDICATIONS = [
  {
    id: 'rx-pravachol',
    ndc: '0003-5194-10',
    display: 'PRAVACHOL 40 mg oral tablet (90 TABLET in 1 BOTTLE)',
    text: 'Pravachol 40 mg tablet',
    sig: 'Take 1 tablet by mouth at bedtime',
    authoredOn: '2024-03-01',
  },
  {
    id: 'rx-prinivil',
    ndc: '0006-0106-54',
    display: 'PRINIVIL 10 mg oral tablet (90 TABLET in 1 BOTTLE)',
    text: 'Prinivil 10 mg tablet',
    sig: 'Take 1 tablet by mouth daily',
    authoredOn: '2024-03-02',
  },
  {
    id: 'rx-furosemide',
    ndc: '0054-4299-25',
    display: 'Furosemide 40 mg oral tablet (100 TABLET in 1 BOTTLE)',
    text: 'Furosemide 40 mg tablet',
    sig: 'Take 1 tablet by mouth every morning',
    authoredOn: '2024-03-03',
  },
];

// What happened, for GET /test/stats. Only grant types, error codes and
// counts: never a token value.
const stats = {
  refreshes: 0,
  token_requests: [],
  token_errors: [],
  token_log: [],
  revocations: 0,
  fhir_requests: [],
  // Every authorization request as oidc-provider read it (client, the
  // `prompt` parameter, whether a nonce came), and every interaction it
  // started: its prompt (`login`, `consent`) and oidc-provider's reasons
  // (`login_prompt` when the request asked for prompt=login).
  authorizations: [],
  interactions: [],
  // SHA-256 (hex) of every token value issued, so that a test can search
  // rxsync's output for leaked tokens without this server handing them out.
  issued_token_sha256: [],
};

function issued(...tokens) {
  for (const token of tokens) {
    if (typeof token === 'string') stats.issued_token_sha256.push(createHash('sha256').update(token).digest('hex'));
  }
}

// grantId → jti of every access token issued under it, so that
// POST /test/expire-access can end a patient's access tokens early without
// touching the refresh token (the memory adapter's revokeByGrantId would
// drop every token of the grant).
const accessTokensByGrant = new Map();
// patient → grantIds minted through POST /test/grant.
const grantsByPatient = new Map();

function remember(map, key, value) {
  if (!map.has(key)) map.set(key, new Set());
  map.get(key).add(value);
}

// The identity of a patient at this server: MRN-{id}, Doe, 1980-04-02.
function identityClaims(id) {
  return { sub: id, mrn: `MRN-${id}`, family_name: 'Doe', birthdate: '1980-04-02' };
}

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'rxsync-test', use: 'sig', alg: 'RS256' };
}

// Repeated flag values: `--name A --name B` → [A, B].
function flagValues(name) {
  const values = [];
  process.argv.forEach((arg, i) => {
    if (arg === name && i + 1 < process.argv.length) values.push(process.argv[i + 1]);
  });
  return values;
}

const REDIRECT_URIS = ['http://127.0.0.1/callback', ...flagValues('--redirect-uri')];

function client(clientId, method) {
  return {
    client_id: clientId,
    client_secret: CLIENT_SECRET,
    token_endpoint_auth_method: method,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
  };
}

// `rxsync-jwt`: private_key_jwt with the public keys given by --client-key.
function jwtClient() {
  const keys = flagValues('--client-key').map((spec) => {
    const cut = spec.lastIndexOf(':');
    const key = createPublicKey(readFileSync(spec.slice(0, cut)));
    const alg = key.asymmetricKeyType === 'rsa' ? 'RS384' : 'ES384';
    return { ...key.export({ format: 'jwk' }), kid: spec.slice(cut + 1), alg, use: 'sig' };
  });
  return {
    client_id: 'rxsync-jwt',
    token_endpoint_auth_method: 'private_key_jwt',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
    jwks: { keys },
  };
}

function configuration() {
  const clients = [client('rxsync', 'client_secret_basic'), client('rxsync-post', 'client_secret_post')];
  if (flagValues('--client-key').length) clients.push(jwtClient());
  return {
    clients,
    // SMART App Launch 2.x asymmetric client authentication: RS384, ES384.
    enabledJWA: { clientAuthSigningAlgValues: ['RS256', 'RS384', 'ES256', 'ES384'] },
    scopes: SCOPES,
    // The patient's identity travels with `openid`: userinfo (and ID
    // tokens) carry an MRN, a family name and a birth date, which rxsync's
    // wrong-patient guard compares with its local patient.
    claims: { openid: ['sub', 'mrn', 'family_name', 'birthdate'] },
    // The ID token carries those claims too (oidc-provider's default puts
    // them only in userinfo when an access token can read it), so that
    // rxsync's guard can read `id_token:mrn`.
    conformIdTokenClaims: false,
    // The account is the patient (a patient-facing grant): SMART's
    // `patient` launch context is the grant's accountId.
    async findAccount(_ctx, id) {
      return { accountId: id, async claims() { return identityClaims(id); } };
    },
    features: {
      // The login and consent pages, driven headless by tests/it/oidc/consent.rs.
      devInteractions: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      // RFC 7591, open (no initial access token): `rxsync provider register`.
      registration: { enabled: true },
    },
    // Rotate on every refresh, whatever the client or the token's age.
    rotateRefreshToken: true,
    ttl: {
      AccessToken: DEFAULT_ACCESS_TTL,
      AuthorizationCode: 60,
      Grant: 14 * 24 * 3600,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: 14 * 24 * 3600,
      Session: 24 * 3600,
    },
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
  };
}

function json(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function fhirJson(res, status, body, headers = {}) {
  json(res, status, body, { 'content-type': 'application/fhir+json; charset=utf-8', ...headers });
}

function outcome(severity, code, diagnostics) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

// The post-middleware on oidc-provider's own routes: adds SMART's `patient`
// to successful token responses, counts token requests and successful
// revocations, and remembers which access tokens each grant has.
function observe(provider) {
  provider.on('interaction.started', (_ctx, prompt) => {
    stats.interactions.push({ prompt: prompt.name, reasons: prompt.reasons });
  });
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'authorization') {
      const params = ctx.oidc.params ?? {};
      stats.authorizations.push({
        client_id: params.client_id ?? null,
        prompt: params.prompt ?? null,
        nonce: typeof params.nonce === 'string' && params.nonce !== '',
      });
      return;
    }
    if (route === 'revocation') {
      if (ctx.status === 200) stats.revocations += 1;
      return;
    }
    if (route !== 'token') return;

    const { entities } = ctx.oidc;
    const params = ctx.oidc.params ?? {};
    const grantType = params.grant_type ?? null;
    const ok = ctx.status === 200 && ctx.body && typeof ctx.body === 'object' && !ctx.body.error;
    const presented = entities.RotatedRefreshToken ?? entities.RefreshToken;
    const auth = /^basic /i.test(ctx.get('authorization'))
      ? 'client_secret_basic'
      : params.client_secret ? 'client_secret_post'
        : params.client_assertion ? 'private_key_jwt' : 'none';
    const entry = {
      grant_type: grantType,
      client_id: entities.Client?.clientId ?? null,
      client_auth: auth,
      status: ctx.status,
      error: ok ? null : ctx.body?.error ?? 'unknown',
      // How often the presented refresh token's lineage had rotated before
      // (0: the token minted by /test/grant, 1: its first successor, …).
      presented_rotations: grantType === 'refresh_token' ? presented?.rotations ?? null : null,
      rotated: grantType === 'refresh_token' && ok ? !!entities.RotatedRefreshToken : null,
    };
    stats.token_requests.push(grantType);
    stats.token_log.push(entry);
    if (!ok) {
      stats.token_errors.push(entry.error);
      return;
    }
    if (grantType === 'refresh_token') stats.refreshes += 1;
    issued(ctx.body.access_token, ctx.body.refresh_token, ctx.body.id_token);
    const grant = entities.Grant;
    if (grant) ctx.body = { ...ctx.body, patient: grant.accountId };
    const at = entities.AccessToken;
    if (at?.grantId) remember(accessTokensByGrant, at.grantId, at.jti);
    // Grants made by the authorization code flow end early too (/test/expire-access).
    if (grant && at?.grantId) remember(grantsByPatient, grant.accountId, at.grantId);
  });
}

// oidc-provider accepts client_secret_basic and client_secret_post alike
// for a client registered with either (lib/shared/client_auth.js). This
// server is stricter, so that a test can tell which one rxsync used: on the
// token, revocation and introspection endpoints a client must authenticate
// with the method it is registered with, or gets invalid_client. It reads
// the form body first and hands it to oidc-provider as an already parsed
// body (which oidc-provider supports, with a one-time warning on stderr).
const CLIENT_AUTH = new Map([['rxsync', 'client_secret_basic'], ['rxsync-post', 'client_secret_post'], ['rxsync-jwt', 'private_key_jwt']]);

async function strictClientAuth(provider, req, res) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks).toString('utf8');
  req.body = raw;
  const form = new URLSearchParams(raw);
  const header = req.headers.authorization;
  let clientId = form.get('client_id');
  let used = form.has('client_secret') ? 'client_secret_post'
    : form.has('client_assertion') ? 'private_key_jwt' : 'none';
  const basic = /^basic +(\S+)$/i.exec(header ?? '');
  if (basic) {
    used = 'client_secret_basic';
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    try {
      clientId = decodeURIComponent(decoded.slice(0, decoded.indexOf(':')).replace(/\+/g, ' '));
    } catch {
      return false; // malformed: oidc-provider answers it
    }
  }
  const registered = CLIENT_AUTH.get(clientId);
  if (registered === undefined || registered === used) return false;
  if (new URL(req.url, provider.issuer).pathname === new URL(provider.urlFor('token')).pathname) {
    const grantType = form.get('grant_type');
    stats.token_requests.push(grantType);
    stats.token_errors.push('invalid_client');
    stats.token_log.push({
      grant_type: grantType, client_id: clientId, client_auth: used, status: 401, error: 'invalid_client', presented_rotations: null, rotated: null,
    });
  }
  json(res, 401, {
    error: 'invalid_client',
    error_description: `client ${clientId} is registered for ${registered}, not ${used}`,
  }, basic ? { 'www-authenticate': 'Basic realm="rxsync-test"' } : {});
  return true;
}

// POST /test/grant {"client_id","patient","expires_in"?,"scope"?}: what the
// authorization_code grant would mint after consent, made through
// oidc-provider's own models (Grant, AccessToken, RefreshToken).
async function mintGrant(provider, req, res) {
  let body;
  try {
    body = await readJson(req);
  } catch {
    return json(res, 400, { error: 'invalid_request', error_description: 'body is not JSON' });
  }
  const { client_id: clientId, patient } = body;
  const expiresIn = body.expires_in ?? DEFAULT_ACCESS_TTL;
  const scope = body.scope ?? SCOPE;
  if (typeof scope !== 'string' || !scope.split(' ').every((s) => SCOPES.includes(s))) {
    return json(res, 400, { error: 'invalid_scope', error_description: `scopes are among: ${SCOPES.join(' ')}` });
  }
  if (typeof patient !== 'string' || patient === '') {
    return json(res, 400, { error: 'invalid_request', error_description: 'patient is required' });
  }
  if (!Number.isInteger(expiresIn) || expiresIn < 1) {
    return json(res, 400, { error: 'invalid_request', error_description: 'expires_in must be a positive integer' });
  }
  const client = await provider.Client.find(String(clientId));
  if (!client) {
    return json(res, 400, { error: 'invalid_client', error_description: 'unknown client_id' });
  }

  const grant = new provider.Grant({ accountId: patient, clientId: client.clientId });
  grant.addOIDCScope(scope);
  const grantId = await grant.save();

  const gty = 'authorization_code';
  const at = new provider.AccessToken({
    accountId: patient, client, grantId, gty, scope, expiresIn,
  });
  const accessToken = await at.save();
  // As oidc-provider's default issueRefreshToken: only with offline_access.
  let refreshToken;
  if (scope.split(' ').includes('offline_access')) {
    const rt = new provider.RefreshToken({
      accountId: patient,
      authTime: Math.floor(Date.now() / 1000),
      client,
      grantId,
      gty,
      rotations: 0,
      scope,
    });
    refreshToken = await rt.save();
  }

  remember(accessTokensByGrant, grantId, at.jti);
  remember(grantsByPatient, patient, grantId);
  issued(accessToken, refreshToken);
  return json(res, 200, {
    access_token: accessToken,
    token_type: 'Bearer',
    expires_in: expiresIn,
    refresh_token: refreshToken,
    scope,
    patient,
  });
}

// POST /test/expire-access {"patient"}: ends every access token issued so
// far under the patient's grants (as if they had expired early); refresh
// tokens and grants stay.
async function expireAccess(provider, req, res) {
  const { patient } = await readJson(req);
  let ended = 0;
  for (const grantId of grantsByPatient.get(patient) ?? []) {
    for (const jti of accessTokensByGrant.get(grantId) ?? []) {
      const at = await provider.AccessToken.find(jti);
      if (at) {
        await at.destroy();
        ended += 1;
      }
    }
    accessTokensByGrant.delete(grantId);
  }
  return json(res, 200, { ended });
}

// GET /test/client?client_id=ID: a client as oidc-provider keeps it (a
// dynamically registered one too), secret included, so that a test can look
// for the secret by value where it must not be.
async function registeredClient(provider, res, url) {
  const client = await provider.Client.find(String(url.searchParams.get('client_id')));
  if (!client) return json(res, 404, { error: 'invalid_client' });
  return json(res, 200, {
    client_id: client.clientId,
    client_secret: client.clientSecret,
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    redirect_uris: client.redirectUris,
    scope: client.scope,
  });
}

async function testRoute(provider, req, res, url) {
  if (req.method === 'POST' && url.pathname === '/test/grant') return mintGrant(provider, req, res);
  if (req.method === 'POST' && url.pathname === '/test/expire-access') return expireAccess(provider, req, res);
  if (req.method === 'GET' && url.pathname === '/test/stats') return json(res, 200, stats);
  if (req.method === 'GET' && url.pathname === '/test/client') return registeredClient(provider, res, url);
  return json(res, 404, { error: 'not_found' });
}

function medicationRequest(base, patient, med) {
  return {
    fullUrl: `${base}/fhir/MedicationRequest/${med.id}`,
    resource: {
      resourceType: 'MedicationRequest',
      id: med.id,
      status: 'active',
      intent: 'order',
      medicationCodeableConcept: {
        coding: [{ system: 'http://hl7.org/fhir/sid/ndc', code: med.ndc, display: med.display }],
        text: med.text,
      },
      subject: { reference: `Patient/${patient}` },
      authoredOn: med.authoredOn,
      dosageInstruction: [{ text: med.sig }],
    },
    search: { mode: 'match' },
  };
}

function searchset(base, type, patient, page) {
  const all = type === 'MedicationRequest' ? MEDICATIONS : [];
  const pages = Math.max(1, Math.ceil(all.length / PAGE_SIZE));
  const pageUrl = (n) => `${base}/fhir/${type}?patient=${encodeURIComponent(patient)}&_page=${n}`;
  const link = [{ relation: 'self', url: pageUrl(page) }];
  if (page < pages) link.push({ relation: 'next', url: pageUrl(page + 1) });
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total: all.length,
    link,
    entry: all
      .slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE)
      .map((med) => medicationRequest(base, patient, med)),
  };
}

function bearerChallenge(error, description) {
  const parts = ['realm="rxsync-test-fhir"'];
  if (error) parts.push(`error="${error}"`);
  if (description) parts.push(`error_description="${description}"`);
  return `Bearer ${parts.join(', ')}`;
}

// GET /fhir/{MedicationRequest|MedicationStatement|MedicationDispense}?patient=X
async function fhirRoute(provider, base, req, res, url) {
  const done = (status) => stats.fhir_requests.push({
    method: req.method, path: url.pathname, page: Number(url.searchParams.get('_page') ?? 1), status,
  });
  const fail = (status, code, text, challenge) => {
    done(status);
    fhirJson(res, status, outcome('error', code, text), challenge ? { 'www-authenticate': challenge } : {});
  };

  const type = url.pathname.slice('/fhir/'.length);
  if (req.method !== 'GET') return fail(405, 'not-supported', 'only GET is served');
  if (!FHIR_TYPES.has(type)) return fail(404, 'not-found', `no resource type ${type} here`);

  // One placement only (RFC 6750 §2): the Authorization header.
  if (url.searchParams.has('access_token')) {
    return fail(400, 'security', 'bearer tokens go in the Authorization header only', bearerChallenge('invalid_request'));
  }
  const header = req.headers.authorization ?? '';
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(header);
  if (!match) return fail(401, 'login', 'no bearer token', bearerChallenge());

  const at = await provider.AccessToken.find(match[1]);
  if (!at || at.isExpired) {
    return fail(401, 'login', 'access token is unknown, expired or revoked', bearerChallenge('invalid_token', 'The access token is invalid'));
  }
  const scopes = at.scopes;
  if (!scopes.has(`patient/${type}.rs`) && !scopes.has(`patient/${type}.read`)) {
    return fail(403, 'forbidden', `scope lacks patient/${type}.rs`, bearerChallenge('insufficient_scope'));
  }
  const requested = (url.searchParams.get('patient') ?? url.searchParams.get('subject') ?? '').replace(/^Patient\//, '');
  if (requested === '') return fail(400, 'required', 'a patient search parameter is required');
  if (requested !== at.accountId) return fail(403, 'forbidden', 'the token is for another patient');

  const page = Number(url.searchParams.get('_page') ?? 1);
  if (!Number.isInteger(page) || page < 1) return fail(400, 'invalid', '_page must be a positive integer');
  done(200);
  return fhirJson(res, 200, searchset(base, type, requested, page));
}

function smartConfiguration(provider) {
  return {
    issuer: provider.issuer,
    token_endpoint: provider.urlFor('token'),
    revocation_endpoint: provider.urlFor('revocation'),
    introspection_endpoint: provider.urlFor('introspection'),
    registration_endpoint: provider.urlFor('registration'),
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    scopes_supported: ['openid', 'offline_access', 'patient/MedicationRequest.rs'],
    capabilities: ['client-confidential-symmetric', 'context-standalone-patient', 'permission-offline', 'permission-patient', 'permission-v2'],
  };
}

// GET /fhir/metadata: what is served, with SMART's legacy oauth-uris.
function capabilityStatement(provider) {
  const oauthUris = {
    url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
    extension: [
      { url: 'token', valueUri: provider.urlFor('token') },
      { url: 'revoke', valueUri: provider.urlFor('revocation') },
      { url: 'introspect', valueUri: provider.urlFor('introspection') },
    ],
  };
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{
      mode: 'server',
      security: { extension: [oauthUris], service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }] },
      resource: [...FHIR_TYPES].map((type) => ({
        type,
        interaction: [{ code: 'search-type' }],
        searchParam: [{ name: 'patient', type: 'reference' }],
      })),
    }],
  };
}

let provider;
let callback;
let base;
let CLIENT_AUTH_PATHS;

const server = createServer((req, res) => {
  const url = new URL(req.url, base);
  let handled;
  if (url.pathname === '/fhir/.well-known/smart-configuration' && req.method === 'GET') {
    handled = Promise.resolve(json(res, 200, smartConfiguration(provider)));
  } else if (url.pathname === '/fhir/metadata' && req.method === 'GET') {
    handled = Promise.resolve(fhirJson(res, 200, capabilityStatement(provider)));
  } else if (url.pathname.startsWith('/fhir/')) {
    handled = fhirRoute(provider, base, req, res, url);
  } else if (url.pathname.startsWith('/test/')) {
    handled = testRoute(provider, req, res, url);
  } else if (req.method === 'POST' && CLIENT_AUTH_PATHS.has(url.pathname)) {
    handled = strictClientAuth(provider, req, res).then((refused) => refused || callback(req, res));
  } else {
    handled = callback(req, res);
  }
  Promise.resolve(handled).catch((err) => {
    process.stderr.write(`server.mjs: ${req.method} ${url.pathname}: ${err?.stack ?? err}\n`);
    if (!res.headersSent) json(res, 500, { error: 'server_error' });
    else res.destroy();
  });
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  base = `http://127.0.0.1:${port}`;
  provider = new Provider(base, configuration());
  observe(provider);
  callback = provider.callback();
  CLIENT_AUTH_PATHS = new Set(['token', 'revocation', 'introspection'].map((name) => provider.pathFor(name)));
  process.stdout.write(`${JSON.stringify({
    issuer: base,
    authorization_endpoint: provider.urlFor('authorization'),
    token_endpoint: provider.urlFor('token'),
    revocation_endpoint: provider.urlFor('revocation'),
    introspection_endpoint: provider.urlFor('introspection'),
    userinfo_endpoint: provider.urlFor('userinfo'),
    jwks_uri: provider.urlFor('jwks'),
    fhir_base: `${base}/fhir`,
  })}\n`);
});

if (process.argv.includes('--exit-on-stdin-close')) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
