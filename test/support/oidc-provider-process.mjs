// A local OpenID provider for test/console-oidc.test.ts (oidc-provider is ESM-only, so it runs in
// its own process). Usage: node oidc-provider-process.mjs <client-json>; prints {"issuer": …} on stdout when
// listening. The test picks who signs in next with POST /_test/next-login (an account's claims);
// the login and consent interactions then complete on their own, for that account.
import { createServer } from 'node:http';
import process from 'node:process';
import Provider from 'oidc-provider';

const client = JSON.parse(process.argv[2]);
const accounts = new Map();
let next = null;

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{ ...client, grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'email', 'profile'],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['test-cookie-key-for-oidc-provider'] },
  async findAccount(ctx, id) {
    const a = accounts.get(id);
    return a ? { accountId: id, claims: async () => ({ ...a }) } : undefined;
  },
});
provider.on('server_error', (ctx, err) => process.stderr.write(`oidc-provider server_error: ${err.stack}\n`));
const callback = provider.callback();

server.on('request', async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/_test/next-login') {
      let body = '';
      for await (const chunk of req) body += chunk;
      next = JSON.parse(body);
      accounts.set(next.sub, next);
      res.writeHead(204).end();
      return;
    }
    const m = /^\/interaction\/([^/?]+)/.exec(req.url ?? '');
    if (m && req.method === 'GET') {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        if (!next) {
          res.writeHead(409).end('no next login set');
          return;
        }
        await provider.interactionFinished(req, res, { login: { accountId: next.sub } }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      grant.addOIDCScope(String(details.params.scope));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    callback(req, res);
  } catch (err) {
    process.stderr.write(`oidc test provider: ${err.stack}\n`);
    if (!res.headersSent) res.writeHead(500).end('interaction failed');
  }
});

process.stdout.write(JSON.stringify({ issuer }) + '\n');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
