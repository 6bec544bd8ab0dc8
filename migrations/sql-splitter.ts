/**
 * Splits SQL text into top-level statements on `;`, skipping quoted strings ('...', E'...'),
 * quoted identifiers ("..."), dollar-quoted bodies ($tag$...$tag$) and comments (-- and nested
 * /* *\/). Used for `-- silo:no-transaction` migrations, whose statements (CREATE INDEX
 * CONCURRENTLY, ...) must each be sent on their own: a multi-statement query string runs as one
 * implicit transaction. Statements that are only comments are dropped.
 */
export function splitSqlStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  const n = sql.length;
  const push = (end: number) => {
    const stmt = sql.slice(start, end).trim();
    if (stripSqlComments(stmt).trim()) out.push(stmt);
  };
  while (i < n) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol === -1 ? n : eol + 1;
    } else if (c === '/' && next === '*') {
      i = skipBlockComment(sql, i);
    } else if (c === "'") {
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]) && (i < 2 || !/[\w$]/.test(sql[i - 2]));
      i = skipQuoted(sql, i, "'", escapes);
    } else if (c === '"') {
      i = skipQuoted(sql, i, '"', false);
    } else if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      // `$1` parameters and identifiers containing `$` are not dollar quotes.
      if (tag && !(i > 0 && /[\w$]/.test(sql[i - 1]))) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close === -1 ? n : close + tag[0].length;
      } else {
        i++;
      }
    } else if (c === ';') {
      push(i);
      start = ++i;
    } else {
      i++;
    }
  }
  push(n);
  return out;
}

/** Removes -- and /* *\/ comments outside quotes (to tell an empty section from a real one). */
export function stripSqlComments(sql: string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol === -1 ? sql.length : eol;
    } else if (c === '/' && next === '*') {
      i = skipBlockComment(sql, i);
    } else if (c === "'" || c === '"') {
      const end = skipQuoted(sql, i, c, false);
      out += sql.slice(i, end);
      i = end;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function skipBlockComment(sql: string, i: number): number {
  let depth = 0;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return i;
}

/** Index just past the closing quote; a doubled quote is an escaped quote, and so is \' in E'' strings. */
function skipQuoted(sql: string, i: number, q: string, backslashEscapes: boolean): number {
  i++;
  while (i < sql.length) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === q) {
      if (sql[i + 1] === q) i += 2;
      else return i + 1;
    } else {
      i++;
    }
  }
  return i;
}
