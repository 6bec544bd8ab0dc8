import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

/**
 * A reader for pg_dump's custom format (pg_backup_archiver.c ReadHead/ReadToc, pg_backup_custom.c
 * data blocks), archive versions 1.14-1.16: enough to check a dump this machine's pg_restore is
 * too old to read (pg_dump 18 writes 1.16; pg_restore 15 reads up to 1.14).
 */
export interface ArchiveEntry {
  dumpId: number;
  desc: string;
  tag: string;
  namespace: string | null;
  owner: string | null;
  defn: string | null;
  /** Offset of the entry's data block, when the TOC was rewritten with offsets (seekable output). */
  dataOffset: number | null;
}

export interface CustomArchive {
  version: string;
  format: number;
  compression: number;
  database: string | null;
  serverVersion: string | null;
  dumperVersion: string | null;
  toc: ArchiveEntry[];
  /** Data blocks by dumpId: where they start in the file and their (inflated) content. */
  data: Map<number, { offset: number; content: Buffer }>;
}

const K_OFFSET_POS_SET = 2;

export function readCustomArchive(path: string): CustomArchive {
  const b = readFileSync(path);
  if (b.subarray(0, 5).toString('latin1') !== 'PGDMP') throw new Error('not a pg_dump archive (no PGDMP magic)');
  let p = 5;
  const [vmaj, vmin, vrev, intSize, offSize, format] = b.subarray(p, p + 6);
  p += 6;
  const v = (vmaj << 16) | (vmin << 8);
  if (v < 0x010e00 || v > 0x011000) throw new Error(`archive version ${vmaj}.${vmin} not handled here`);
  const readInt = () => {
    const negative = b[p++] !== 0;
    let n = 0;
    for (let i = 0; i < intSize; i++) n += b[p++] * 2 ** (8 * i);
    return negative ? -n : n;
  };
  const readStr = () => {
    const n = readInt();
    if (n < 0) return null;
    const s = b.subarray(p, p + n).toString('utf8');
    p += n;
    return s;
  };
  const compression = v >= 0x010f00 ? b[p++] : readInt();
  for (let i = 0; i < 7; i++) readInt(); // creation time
  const database = readStr();
  const serverVersion = readStr();
  const dumperVersion = readStr();
  const toc: ArchiveEntry[] = [];
  for (let i = readInt(); i > 0; i--) {
    const dumpId = readInt();
    readInt(); // hadDumper
    readStr(); // tableoid
    readStr(); // oid
    const tag = readStr() ?? '';
    const desc = readStr() ?? '';
    readInt(); // section
    const defn = readStr();
    readStr(); // dropStmt
    readStr(); // copyStmt
    const namespace = readStr();
    readStr(); // tablespace
    readStr(); // tableam
    if (v >= 0x011000) readInt(); // relkind
    const owner = readStr();
    readStr(); // withOids
    while (readStr() !== null); // dependencies
    const flag = b[p++];
    let off = 0;
    for (let k = 0; k < offSize; k++) off += b[p++] * 2 ** (8 * k);
    toc.push({ dumpId, desc, tag, namespace, owner, defn, dataOffset: flag === K_OFFSET_POS_SET ? off : null });
  }
  const data = new Map<number, { offset: number; content: Buffer }>();
  while (p < b.length) {
    const offset = p;
    p++; // block type
    const dumpId = readInt();
    const chunks: Buffer[] = [];
    for (let n = readInt(); n !== 0; n = readInt()) {
      chunks.push(b.subarray(p, p + n));
      p += n;
    }
    const raw = Buffer.concat(chunks);
    data.set(dumpId, { offset, content: compression && raw.length ? inflateSync(raw) : raw });
  }
  return { version: `${vmaj}.${vmin}.${vrev}`, format, compression, database, serverVersion, dumperVersion, toc, data };
}
