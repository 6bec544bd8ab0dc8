import { Html, html } from './html';

export interface Viewer {
  /** What the header shows: the operator's email, or "break-glass". */
  label: string;
  role: string;
  csrfToken: string;
  /** Whether the role holds a permission (the same table the API checks). */
  can(permission: string): boolean;
}

const when = (d: Date | null | undefined) => (d ? html`<time datetime="${d.toISOString()}">${d.toISOString().replace('T', ' ').slice(0, 19)}Z</time>` : html`—`);
export { when };

export function layout(title: string, body: Html, viewer: Viewer | null, active = ''): Html {
  const link = (href: string, label: string, key: string) => html`<a href="${href}"${key === active ? html` aria-current="page"` : ''}>${label}</a>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Silo console</title>
${viewer ? html`<meta name="csrf-token" content="${viewer.csrfToken}">` : ''}
<link rel="stylesheet" href="/console/assets/console.css"><script src="/console/assets/console.js" defer></script></head>
<body><header class="top"><a class="brand" href="/console">Silo</a>
${viewer
    ? html`<nav aria-label="Main">${link('/console/tenants', 'Tenants', 'tenants')}${link('/console/fleet', 'Fleet', 'fleet')}${link('/console/migrations', 'Migrations', 'migrations')}${viewer.can('billing:read') ? link('/console/billing-events', 'Billing', 'billing') : ''}${viewer.can('operators:read') ? link('/console/operators', 'Operators', 'operators') : ''}</nav>
<form method="post" action="/console/logout" class="who"><span>${viewer.label} <span class="role">(${viewer.role})</span></span><input type="hidden" name="_csrf" value="${viewer.csrfToken}"><button type="submit">Sign out</button></form>`
    : ''}
</header>
<main id="main">${body}</main>
<div id="toast" role="status" aria-live="polite"></div>
</body></html>`;
}

/** `sso`: offer "Sign in with SSO" (CONSOLE_OIDC_* configured). */
export function loginPage(error?: string, sso = false): Html {
  return layout('Sign in', html`<section class="card narrow"><h1>Sign in</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
${sso ? html`<p><a class="button" href="/console/oidc/login">Sign in with SSO</a></p><p>Or paste a personal token (<code>silo_op_…</code>) or the break-glass ADMIN_TOKEN.</p>` : html`<p>Paste a personal token (<code>silo_op_…</code>) or the break-glass ADMIN_TOKEN.</p>`}
<form method="post" action="/console/login"><label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="off" required autofocus>
<button type="submit">Sign in</button></form></section>`, null);
}

export function errorPage(viewer: Viewer | null, status: number, message: string): Html {
  return layout(`Error ${status}`, html`<section class="card"><h1>${status}</h1><p>${message}</p><p><a href="/console/tenants">Back to tenants</a></p></section>`, viewer);
}
