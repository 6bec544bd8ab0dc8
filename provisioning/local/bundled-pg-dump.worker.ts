/**
 * Worker thread of bundled-pg-dump.ts: runs the WebAssembly pg_dump of @electric-sql/pglite-tools
 * (pg_dump 18, libpq included) with its socket replaced by two synchronous callbacks. The main
 * thread owns the real TCP (or TLS) connection; this thread blocks in `read` on a SharedArrayBuffer
 * until the main thread has answered. Self-contained on purpose (node builtins only, everything
 * else through workerData): under Jest the file is transpiled and run with `eval`.
 *
 * Read semantics (libpq's pqReadData, fe-misc.c): a read returning 0 is "no data now"; libpq then
 * asks poll() (which this build answers "ready" for every fd) and reads again, and a second 0 is
 * EOF ("server closed the connection unexpectedly"). After a read that returned data, once more
 * than 32 kB are buffered, libpq reads again speculatively and treats 0 as "that was all". So:
 * a read right after a read that returned data never blocks (it may be speculative and nothing
 * more may come until libpq sends its next query); a read after a 0 blocks until the server sends
 * bytes or the connection ends. Blocking reads are the only ones that need data, so this neither
 * deadlocks nor reports a false EOF; the main thread's idle timeout bounds any wait it did not foresee.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import NodeModule from 'node:module';
import { inspect } from 'node:util';

/** Shared control words (Int32Array over `ctl`). */
export const CTL_STATE = 0; // 0: read requested, waiting; 1: answered
export const CTL_LENGTH = 1; // bytes the answer put in `data` (0: none, connection over)
export const CTL_CANCELLED = 2; // 1: the main thread gave up (abort, timeout, socket gone)

export interface WorkerInput {
  factoryPath: string;
  ctl: SharedArrayBuffer;
  data: SharedArrayBuffer;
  args: string[];
  env: Record<string, string>;
  outPath: string;
}

export type WorkerMessage =
  | { t: 'read'; max: number; block: boolean }
  | { t: 'write'; bytes: Uint8Array }
  | { t: 'done'; code: number | null; stderr: string[] };

interface EmscriptenStream { position: number }
interface PgDumpModule {
  ENV: Record<string, string>;
  HEAPU8: Uint8Array;
  FS: {
    makedev(major: number, minor: number): number;
    registerDevice(dev: number, ops: object): void;
    mkdir(path: string): void;
    mkdev(path: string, mode: number, dev: number): void;
    writeFile(path: string, data: string): void;
    chmod(path: string, mode: number): void;
    ErrnoError: new (errno: number) => Error;
  };
  addFunction(fn: (ptr: number, len: number) => number, sig: string): number;
  _pgl_set_rw_cbs(read: number, write: number): void;
  callMain(args: string[]): number;
}
type Factory = (overrides: object) => Promise<PgDumpModule>;

/** Where pg_dump writes inside the module: a device whose writes and seeks go to the real file. */
const OUT_DEVICE = '/out/dump';

/**
 * The Emscripten module factory of the package's CommonJS build. The package exports only its
 * PGlite wrapper (which reads the output as UTF-8 text, so no custom format); the factory is the
 * bundle's variable assigned just before the wrapper's `"/tmp/out.sql"` constant, exported here by
 * appending one line to the bundle's source. The version is pinned in package.json; if a new
 * version moves it, this fails with a message rather than running something else.
 */
export function loadFactory(path: string): Factory {
  let src = readFileSync(path, 'utf8');
  const m = /;var ([A-Za-z_$][\w$]*)=[A-Za-z_$][\w$]*;var [A-Za-z_$][\w$]*="\/tmp\/out\.sql"/.exec(src);
  if (!m) throw new Error(`bundled pg_dump: module factory not found in ${path} (unexpected @electric-sql/pglite-tools build)`);
  src += `\nmodule.exports.__pgDumpFactory=${m[1]};\n`;
  const Mod = NodeModule as unknown as { new (id: string): { filename: string; paths: string[]; exports: { __pgDumpFactory?: Factory }; _compile(src: string, file: string): void }; _nodeModulePaths(dir: string): string[] };
  const mod = new Mod(path);
  mod.filename = path;
  mod.paths = Mod._nodeModulePaths(dirname(path));
  mod._compile(src, path);
  if (typeof mod.exports.__pgDumpFactory !== 'function') throw new Error(`bundled pg_dump: ${m[1]} in ${path} is not the module factory`);
  return mod.exports.__pgDumpFactory;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : inspect(err, { depth: 2, breakLength: Infinity });
}

async function run(input: WorkerInput): Promise<void> {
  const port = parentPort!;
  const ctl = new Int32Array(input.ctl);
  const data = new Uint8Array(input.data);
  const stderr: string[] = [];
  let code: number | null = null;
  const outFd = openSync(input.outPath, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    const factory = loadFactory(input.factoryPath);
    const mod = await factory({
      noExitRuntime: false,
      thisProgram: '/bin/pg_dump',
      print: (line: string) => stderr.push(line),
      printErr: (line: string) => stderr.push(line),
      onExit: (status: number) => (code = status),
      preRun: [(m: PgDumpModule) => Object.assign(m.ENV, input.env)],
    });
    const { FS } = mod;
    // pg_dump checks that its own executable exists (find_my_exec); an empty file satisfies it.
    try {
      FS.mkdir('/bin');
    } catch {
      // already there
    }
    FS.writeFile('/bin/pg_dump', '');
    FS.chmod('/bin/pg_dump', 0o755);
    const dev = FS.makedev(64, 0);
    FS.registerDevice(dev, {
      open() {},
      close() {},
      write: (_s: EmscriptenStream, buf: Uint8Array, offset: number, length: number, position: number) => writeSync(outFd, buf, offset, length, position),
      // Seekable, so the custom format's table of contents is rewritten with data offsets at the end, as with a native pg_dump.
      llseek: (s: EmscriptenStream, offset: number, whence: number) => {
        const pos = offset + (whence === 1 ? s.position : whence === 2 ? fstatSync(outFd).size : 0);
        if (pos < 0) throw new FS.ErrnoError(28); // EINVAL
        return pos;
      },
    });
    FS.mkdir('/out');
    FS.mkdev(OUT_DEVICE, 0o600, dev);

    let lastReadEmpty = false;
    const write = mod.addFunction((ptr, len) => {
      if (Atomics.load(ctl, CTL_CANCELLED) === 0) port.postMessage({ t: 'write', bytes: mod.HEAPU8.slice(ptr, ptr + len) } satisfies WorkerMessage);
      return len;
    }, 'iii');
    const read = mod.addFunction((ptr, max) => {
      let n = 0;
      if (Atomics.load(ctl, CTL_CANCELLED) === 0) {
        Atomics.store(ctl, CTL_STATE, 0);
        port.postMessage({ t: 'read', max: Math.min(max, data.length), block: lastReadEmpty } satisfies WorkerMessage);
        // The main thread always answers (data, 0 at EOF, or 0 when it cancels); the slices only re-check the flag.
        while (Atomics.load(ctl, CTL_STATE) === 0 && Atomics.load(ctl, CTL_CANCELLED) === 0) Atomics.wait(ctl, CTL_STATE, 0, 1000);
        if (Atomics.load(ctl, CTL_STATE) === 1) n = Atomics.load(ctl, CTL_LENGTH);
        if (n > 0) mod.HEAPU8.set(data.subarray(0, n), ptr);
      }
      lastReadEmpty = n === 0;
      return n;
    }, 'iii');
    mod._pgl_set_rw_cbs(read, write);
    try {
      mod.callMain([...input.args, `--file=${OUT_DEVICE}`]);
    } catch (err) {
      stderr.push(`bundled pg_dump: ${describe(err)}`);
      code ??= 1;
    }
  } catch (err) {
    stderr.push(`bundled pg_dump: ${describe(err)}`);
    code = null;
  } finally {
    closeSync(outFd);
  }
  port.postMessage({ t: 'done', code, stderr: stderr.slice(-50) } satisfies WorkerMessage);
}

if (parentPort && workerData && (workerData as { factoryPath?: unknown }).factoryPath) void run(workerData as WorkerInput);
