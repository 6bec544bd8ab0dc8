/**
 * Reads SQL text a transaction-mode client sends for signs that it may leave session state on the
 * backend (state that outlives the transaction and would reach the next client): a session-level
 * SET or RESET, LISTEN/UNLISTEN, PREPARE/DEALLOCATE, DECLARE (a cursor WITH HOLD), DISCARD, LOAD
 * or a DO block at the start of a statement; TEMP/TEMPORARY as a word or pg_temp (temporary objects),
 * set_config, advisory (locks), dblink, or a `U&` Unicode-escaped name (which could spell any of
 * them) anywhere. A match means the backend is reset (DISCARD ALL) before it is handed on; text
 * with none is handed on as it is.
 *
 * Deliberately conservative on words and blind to functions: words in string literals or
 * identifiers cause a needless reset; a function that changes session state without such a word in
 * the calling SQL is not seen (the backend's ParameterStatus for reported settings is). Clients
 * that rely on session state use session mode, as with PgBouncer, which never resets in
 * transaction mode.
 *
 * Statement-level words count only at the start of a statement (after `;`, whitespace and
 * comments, nested `/* *\/` included), so `UPDATE … SET`, `ON CONFLICT DO`, `SET LOCAL`,
 * `SET TRANSACTION` and `SET CONSTRAINTS` do not. A linear scanner, not a regex: its state carries
 * across network chunks, and no input makes it backtrack.
 */
const STATEMENT_WORDS = new Set(['set', 'reset', 'listen', 'unlisten', 'prepare', 'deallocate', 'declare', 'discard', 'load', 'do']);
const DROPS_STATEMENTS = new Set(['deallocate', 'discard']);
/** SET followed by one of these lasts the transaction only. */
const TRANSACTION_SCOPED = new Set(['local', 'transaction', 'constraints']);
const ANYWHERE = /\btemp(?:orary)?\b|pg_temp|set_config|advisory|dblink|u&/i;
/** Longest ANYWHERE word: the characters of one chunk carried into the next. */
const ANYWHERE_OVERLAP = 10;
const MAX_WORD = 16;

type State = 'start' | 'word' | 'after-set' | 'set-word' | 'body' | 'line-comment' | 'block-comment' | 'block-comment-star' | 'block-comment-slash';

export class SessionWords {
  private state: State = 'start';
  private seenState = false;
  private seenDrop = false;
  /** Where a comment returns to. */
  private resume: 'start' | 'after-set' = 'start';
  private depth = 0;
  /** A `-` or `/` at a statement's start: a comment, if the next character says so. */
  private pending = 0;
  private word = '';
  private tail = '';

  /** The text read may leave session state (read at the end of the text). */
  get sessionState(): boolean {
    this.flush();
    return this.seenState;
  }

  /** The text may drop prepared statements (DEALLOCATE, DISCARD). */
  get deallocates(): boolean {
    this.flush();
    return this.seenDrop;
  }

  feed(fragment: Buffer): void {
    if (this.seenState && this.seenDrop) return;
    const text = fragment.toString('latin1');
    if (ANYWHERE.test(this.tail + text)) this.seenState = true;
    this.tail = text.slice(-ANYWHERE_OVERLAP);
    for (let i = 0; i < text.length; i++) this.step(text.charCodeAt(i));
  }

  private step(c: number): void {
    switch (this.state) {
      case 'start':
      case 'after-set': {
        if (this.pending) {
          const p = this.pending;
          this.pending = 0;
          if ((p === 0x2d && c === 0x2d) || (p === 0x2f && c === 0x2a)) {
            this.resume = this.state;
            this.state = c === 0x2d ? 'line-comment' : 'block-comment';
            this.depth = 1;
            return;
          }
          this.startBody(); // the statement starts with that character
          this.step(c);
          return;
        }
        if (isSpace(c) || c === 0x3b /* ; */) return;
        if (c === 0x2d /* - */ || c === 0x2f /* / */) {
          this.pending = c;
          return;
        }
        if (isWordChar(c)) {
          this.word = String.fromCharCode(c | 0x20);
          this.state = this.state === 'start' ? 'word' : 'set-word';
          return;
        }
        this.startBody();
        return;
      }
      case 'word':
      case 'set-word':
        if (isWordChar(c)) {
          if (this.word.length < MAX_WORD) this.word += String.fromCharCode(c | 0x20);
          return;
        }
        this.endWord();
        this.step(c);
        return;
      case 'body':
        // Only the end of the statement matters here (a `;` in a literal or comment only costs a reset).
        if (c === 0x3b) this.state = 'start';
        return;
      case 'line-comment':
        if (c === 0x0a) this.state = this.resume;
        return;
      case 'block-comment':
        if (c === 0x2a) this.state = 'block-comment-star';
        else if (c === 0x2f) this.state = 'block-comment-slash';
        return;
      case 'block-comment-star':
        if (c === 0x2f) {
          this.depth--;
          this.state = this.depth === 0 ? this.resume : 'block-comment';
        } else if (c !== 0x2a) this.state = 'block-comment';
        return;
      case 'block-comment-slash':
        if (c === 0x2a) this.depth++;
        if (c !== 0x2f) this.state = 'block-comment';
        return;
    }
  }

  /** Something other than a word where a statement (or a SET's name) starts. */
  private startBody(): void {
    if (this.state === 'after-set') this.seenState = true; // SET "x" = …: session-level
    this.state = 'body';
  }

  private endWord(): void {
    const w = this.word;
    this.word = '';
    if (this.state === 'set-word') {
      if (!TRANSACTION_SCOPED.has(w)) this.seenState = true;
      this.state = 'body';
      return;
    }
    if (w === 'set') {
      this.state = 'after-set';
      return;
    }
    if (STATEMENT_WORDS.has(w)) this.seenState = true;
    if (DROPS_STATEMENTS.has(w)) this.seenDrop = true;
    this.state = 'body';
  }

  /** The end of the text: a word still being read counts; a bare SET is session-level. */
  private flush(): void {
    if (this.state === 'word' || this.state === 'set-word') this.endWord();
    if (this.state === 'after-set') this.seenState = true;
  }
}

const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isWordChar = (c: number) => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || (c >= 0x30 && c <= 0x39);
