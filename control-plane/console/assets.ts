/**
 * The console's one stylesheet and one script, served as they are (no build step, no framework):
 * the pages are rendered on the server, the script only submits action forms to the admin API with
 * the session's CSRF token, asks for confirmation, and polls the page's live fragments.
 */
export const CONSOLE_CSS = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;background:#f5f6f8}
a{color:#0b57d0}
:focus-visible{outline:3px solid #f0a000;outline-offset:2px}
.top{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;padding:.6rem 1rem;background:#1b1f24;color:#fff}
.top a{color:#fff;text-decoration:none}.top nav{display:flex;flex-wrap:wrap;gap:.3rem 1rem}.top nav a[aria-current]{text-decoration:underline}
.brand{font-weight:700}.who{margin-left:auto;display:flex;gap:.6rem;align-items:center}.role{opacity:.75}
main{max-width:1200px;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.1rem;margin:0 0 .6rem}
.card{background:#fff;border:1px solid #d8dce1;border-radius:8px;padding:1rem;margin:0 0 1rem}
.narrow{max-width:28rem;margin:2rem auto}
label{display:inline-flex;flex-direction:column;gap:.2rem;font-size:.85rem;color:#444}
input,select,button{font:inherit;padding:.4rem .6rem;border:1px solid #9aa3ad;border-radius:6px;background:#fff;color:inherit}
button{background:#0b57d0;border-color:#0b57d0;color:#fff;cursor:pointer}button:disabled{opacity:.5;cursor:not-allowed}
.danger button{background:#b3261e;border-color:#b3261e}
.top button{background:transparent;border-color:#fff}
.narrow input{width:100%;margin-bottom:.8rem}
.filters,.actions{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end;margin-bottom:1rem}
.actions form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;padding:.5rem;border:1px dashed #d8dce1;border-radius:6px}
.table-wrap{overflow-x:auto}
table{width:100%;border-collapse:collapse;background:#fff}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e6e9ed;vertical-align:top}
thead th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:#555}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;background:#e6e9ed}
.s-active,.s-succeeded{background:#d5f0dd;color:#0d5323}.s-suspended,.s-queued,.s-running{background:#fdf0c8;color:#6b4e00}
.s-failed,.s-deleted,.s-deprovisioning,.s-cancelled{background:#fbdad7;color:#8c1d18}
.muted{color:#666;font-weight:400}.error{color:#b3261e}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}.facts dt{font-weight:600}.facts dd{margin:0;min-width:0;overflow-wrap:anywhere}
.timeline{list-style:none;padding:0;margin:0}.timeline li{padding:.35rem 0;border-bottom:1px solid #eee}.when{color:#666;font-size:.85rem}
.pager{display:flex;gap:1rem;align-items:center;margin:.8rem 0}
.stats{display:flex;flex-wrap:wrap;gap:1rem;margin-bottom:1rem}.stat{background:#fff;border:1px solid #d8dce1;border-radius:8px;padding:.8rem 1.2rem}.big{display:block;font-size:1.8rem;font-weight:700}
.secret{background:#fff8e1;border:1px solid #f0c000;padding:.6rem;word-break:break-all}
#toast{position:fixed;bottom:1rem;right:1rem;max-width:90vw}#toast p{margin:.3rem 0;padding:.6rem .9rem;border-radius:6px;background:#1b1f24;color:#fff}#toast p.bad{background:#b3261e}
.m-up-to-date,.o-applied{background:#d5f0dd;color:#0d5323}.m-behind,.m-unknown,.o-stale{background:#fdf0c8;color:#6b4e00}.m-failed,.m-drift,.m-unreachable,.o-ignored{background:#fbdad7;color:#8c1d18}
.log{background:#1b1f24;color:#e6e9ed;padding:.8rem;border-radius:6px;overflow:auto;max-height:30rem;white-space:pre-wrap;word-break:break-word;font-size:.8rem}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
@media (max-width:640px){main{padding:.5rem}.facts{grid-template-columns:1fr}.who{margin-left:0}th,td{padding:.35rem}}
`;

export const CONSOLE_JS = `'use strict';
(function () {
  var POLL_MS = 3000;
  function csrf() { var m = document.querySelector('meta[name="csrf-token"]'); return m ? m.content : ''; }
  function toast(msg, bad) {
    var box = document.getElementById('toast'); if (!box) return;
    var p = document.createElement('p'); p.textContent = msg; if (bad) p.className = 'bad';
    box.appendChild(p); setTimeout(function () { p.remove(); }, 6000);
  }
  function bodyOf(form) {
    var o = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.hasAttribute('data-skip')) return;
      if (el.value === '' && el.type !== 'hidden') return;
      var v = el.value;
      if (el.dataset.type === 'bool') v = v === 'true'; else if (el.dataset.type === 'number') v = Number(v);
      o[el.name] = v;
    });
    return o;
  }
  document.addEventListener('input', function (e) {
    var f = e.target.form;
    if (f && f.dataset.slug) f.querySelector('button[type="submit"]').disabled = e.target.value !== f.dataset.slug;
  });
  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (!f.dataset || !f.dataset.api) return;
    e.preventDefault();
    if (f.dataset.slug && f.elements.confirm.value !== f.dataset.slug) { toast('Type the slug exactly to confirm', true); return; }
    if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) return;
    var btn = f.querySelector('button[type="submit"]'); btn.disabled = true;
    var method = f.dataset.method || 'POST';
    var init = { method: method, credentials: 'same-origin', headers: { 'x-csrf-token': csrf(), accept: 'application/json' } };
    if (method !== 'DELETE') { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(bodyOf(f)); }
    fetch(f.dataset.api, init).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (json) {
        btn.disabled = false;
        if (res.status === 401) { location.href = '/console/login'; return; }
        if (!res.ok) { toast(json && json.error ? json.error.code + ': ' + json.error.message : 'HTTP ' + res.status, true); return; }
        if (f.dataset.show) {
          var out = f.closest('section').querySelector('[data-secret]');
          out.hidden = false;
          out.textContent = 'Shown once, copy it now: ' + json[f.dataset.show];
          toast('Issued');
          return;
        }
        toast('Done'); location.reload();
      });
    }, function () { btn.disabled = false; toast('Network error', true); });
  });
  Array.prototype.forEach.call(document.querySelectorAll('[data-live]'), function (el) {
    setInterval(function () {
      if (document.hidden) return;
      fetch(el.dataset.live, { credentials: 'same-origin', headers: { accept: 'application/json' } }).then(function (res) {
        if (res.status === 401) { location.href = '/console/login'; return null; }
        return res.ok ? res.json() : null;
      }).then(function (j) {
        if (!j) return;
        Object.keys(j.fragments).forEach(function (k) {
          var t = el.dataset.fragment === k ? el : el.querySelector('[data-fragment="' + k + '"]');
          if (t && t.innerHTML !== j.fragments[k]) t.innerHTML = j.fragments[k];
        });
      }).catch(function () {});
    }, POLL_MS);
  });
})();
`;
