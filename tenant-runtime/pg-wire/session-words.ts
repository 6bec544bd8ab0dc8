/**
 * Reads SQL text a transaction-mode client sends for signs that it may leave session state on the
 * backend (state that outlives the transaction and would reach the next client): a session-level
 * SET or RESET, LISTEN/UNLISTEN, PREPARE/DEALLOCATE, DECLARE (a cursor WITH HOLD), DISCARD, LOAD,
 * a DO block, CREATE TEMP (or anything in pg_temp), set_config, an advisory lock, dblink. A match
 * means the backend is reset (DISCARD ALL) before it is handed on; text with none is handed on
 * as it is.
 *
 * Deliberately conservative on words and blind to functions: words in string literals or
 * identifiers cause a needless reset; a function that changes session state without such a word in
 * the calling SQL is not seen (the backend's ParameterStatus for reported settings is). Clients
 * that rely on session state use session mode, as with PgBouncer, which never resets in
 * transaction mode.
 *
 * Statement-level words count only at the start of a statement (after `;`), so `UPDATE … SET`,
 * `ON CONFLICT DO`, `SET LOCAL`, `SET TRANSACTION` and `SET CONSTRAINTS` do not.
 */
const AT_START = /;(?:\s|--[^\n]*\n|\/\*[^]*?\*\/)*(?:set(?!\s+(?:local|transaction|constraints)\b)|reset|listen|unlisten|prepare|deallocate|declare|discard|load|do)\b/i;
const ANYWHERE = /\b(?:create\s+(?:(?:global|local)\s+)?|into\s+)temp(?:orary)?\b|pg_temp|set_config|advisory|dblink/i;
const DEALLOCATES = /;(?:\s|--[^\n]*\n|\/\*[^]*?\*\/)*(?:deallocate|discard)\b/i;
/** Characters of one fragment carried into the next: a word split across network chunks still matches. */
const OVERLAP = 64;

export class SessionWords {
  sessionState = false;
  /** The text may drop prepared statements (DEALLOCATE, DISCARD). */
  deallocates = false;
  private tail = ';';

  feed(fragment: Buffer): void {
    if (this.sessionState && this.deallocates) return;
    const text = this.tail + fragment.toString('latin1');
    if (AT_START.test(text) || ANYWHERE.test(text)) this.sessionState = true;
    if (DEALLOCATES.test(text)) this.deallocates = true;
    this.tail = text.slice(-OVERLAP);
  }
}
