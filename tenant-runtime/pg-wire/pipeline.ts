/**
 * The answers a backend still owes, in order, for the messages relayed to it: what lets the front
 * door leave out answers to messages it sent itself (a re-prepare) and put in answers to messages
 * it did not send (a Parse of a statement the backend already has, a Close of a kept statement)
 * without reordering anything the client sees. Pure: the session reports what it sent and which
 * backend messages ended; this says what to drop and what to insert. PgBouncer ≥ 1.21 keeps the
 * same list ("outstanding requests") for the same reason.
 *
 * Extended-protocol rules followed (PostgreSQL protocol docs, "Extended Query"): each Parse, Bind,
 * Close is answered by one message (1, 2, 3), Describe by NoData or RowDescription (a statement's
 * after its ParameterDescription), Execute by CommandComplete, EmptyQueryResponse or
 * PortalSuspended, and Sync, Query and FunctionCall by ReadyForQuery. After an ErrorResponse to an
 * extended message the backend skips everything up to the next Sync: those owe nothing.
 */

const P = 0x50, B = 0x42, D = 0x44, E = 0x45, C = 0x43, S = 0x53, Q = 0x51, F = 0x46;
const EXTENDED = new Set([P, B, D, E, C]);

interface Owed {
  /** The client message type it answers (0 for an answer the front door makes itself). */
  kind: number;
  /** Answer to a message the front door sent itself: not relayed. */
  drop: boolean;
  /** An answer made by the front door, relayed when everything before it has been answered. */
  made: Buffer | null;
  /** The backend skipped or refused the message (error, or skipped up to the Sync). */
  onFail?: () => void;
}

export class Pipeline {
  /** What is owed, oldest first, from `head` on (a deque: shifting a long array costs O(n) in V8). */
  private owed: Owed[] = [];
  private head = 0;
  /** ReadyForQuery answers owed (Sync, Query and FunctionCall messages the backend will answer). */
  private ready = 0;
  /** An error was answered and no Sync was sent since: the backend discards what comes. */
  private skipping = false;

  /** Nothing is owed. */
  get empty(): boolean {
    return this.size === 0;
  }

  get size(): number {
    return this.owed.length - this.head;
  }

  /** ReadyForQuery messages the backend still owes. */
  get readyOwed(): number {
    return this.ready;
  }

  /** A message of `kind` went to the backend. `drop`: its answer is the front door's, not the client's. */
  sent(kind: number, drop = false, onFail?: () => void): void {
    if (this.skipping) {
      if (kind !== S) return onFail?.();
      this.skipping = false;
    }
    this.push({ kind, drop, made: null, onFail });
  }

  /** Whether the backend will read messages sent now (false: it discards them up to a Sync). */
  get accepting(): boolean {
    return !this.skipping;
  }

  /**
   * An answer the front door makes for a message it kept from the backend: returned to be written
   * now when nothing is owed before it, else held until the answers before it went by (null).
   */
  make(answer: Buffer, onFail?: () => void): Buffer | null {
    if (this.skipping) {
      onFail?.(); // the backend would have skipped that message too
      return null;
    }
    if (this.size === 0) return answer;
    this.push({ kind: 0, drop: false, made: answer, onFail });
    return null;
  }

  /** A backend message of `type` starts: whether it answers a message the front door sent itself. */
  dropsNext(type: number): boolean {
    const head = this.peek();
    return head !== undefined && head.drop && type !== 0x45 && completes(head.kind, type);
  }

  /** A backend message of `type` ended: the answers the front door made that come right after it. */
  ended(type: number): Buffer | null {
    const head = this.peek();
    if (!head) return null;
    if (type === 0x45) { // 'E' ErrorResponse
      if (!EXTENDED.has(head.kind)) return null; // a Query's or FunctionCall's: ReadyForQuery follows
      // This message failed and the backend skips everything up to the next Sync.
      while (this.size && this.peek()?.kind !== S) this.shift()?.onFail?.();
      if (!this.size) this.skipping = true;
      return null;
    }
    if (type === 0x5a && !ANSWERED_BY_READY.has(head.kind)) {
      // ReadyForQuery ends a Sync, Query or FunctionCall: whatever is owed before one was skipped.
      while (this.size && !ANSWERED_BY_READY.has(this.peek()?.kind ?? 0)) this.shift()?.onFail?.();
      if (!this.size) return null;
    } else if (!completes(head.kind, type)) return null;
    this.shift();
    return this.takeMade();
  }

  private push(o: Owed): void {
    if (ANSWERED_BY_READY.has(o.kind)) this.ready++;
    this.owed.push(o);
  }

  private peek(): Owed | undefined {
    return this.owed[this.head];
  }

  private shift(): Owed | undefined {
    const o = this.owed[this.head];
    if (!o) return undefined;
    this.owed[this.head] = undefined as unknown as Owed;
    this.head++;
    if (ANSWERED_BY_READY.has(o.kind)) this.ready--;
    if (this.head === this.owed.length) {
      this.owed = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.owed.length) {
      this.owed = this.owed.slice(this.head);
      this.head = 0;
    }
    return o;
  }

  private takeMade(): Buffer | null {
    const out: Buffer[] = [];
    while (this.peek()?.made) out.push(this.shift()?.made as Buffer);
    return out.length === 0 ? null : out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }
}

const ANSWERED_BY_READY = new Set([S, Q, F]);

/** Whether a backend message of `type` is the (last) answer to a client message of `kind`. */
function completes(kind: number, type: number): boolean {
  switch (type) {
    case 0x31: return kind === P; // '1' ParseComplete
    case 0x32: return kind === B; // '2' BindComplete
    case 0x33: return kind === C; // '3' CloseComplete
    case 0x6e: case 0x54: return kind === D; // 'n' NoData, 'T' RowDescription (a Query's are not the end of it)
    case 0x43: case 0x49: case 0x73: return kind === E; // 'C' CommandComplete, 'I' EmptyQueryResponse, 's' PortalSuspended
    case 0x5a: return kind === S || kind === Q || kind === F; // 'Z' ReadyForQuery
    default: return false;
  }
}

/** The answers the front door makes. */
export const PARSE_COMPLETE = Buffer.from([0x31, 0, 0, 0, 4]);
export const CLOSE_COMPLETE = Buffer.from([0x33, 0, 0, 0, 4]);
