import { join } from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import type { RunningTenantRuntime } from '../tenant-runtime/server';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { createFrontDoorTls, FrontDoorTls } from './support/pg-front-door';
import { generatePrismaClient, GeneratedPrismaClient } from './support/prisma-client';
import { createTenants, issueKey, SeededTenant, startTestRuntime } from './support/runtime-fixtures';

/** The generated client's module: generated when the test runs, so there are no types for tsc. */
interface GeneratedModule {
  PrismaClient: new (options: { adapter: PrismaPg }) => any;
}

const CREATE_TABLE = `CREATE TABLE prisma_notes (
  id serial PRIMARY KEY, body text NOT NULL, done boolean NOT NULL DEFAULT false, tags text[] NOT NULL DEFAULT '{}',
  meta jsonb, amount numeric(10, 2), created_at timestamptz(3) NOT NULL DEFAULT now())`;

/** Prisma 7 (query compiler, no Rust engine) with @prisma/adapter-pg through the PostgreSQL front door, on two tenants. */
describe('Prisma with @prisma/adapter-pg through the PostgreSQL front door', () => {
  let generated: GeneratedPrismaClient;
  let tls: FrontDoorTls;
  let cp: TestControlPlane;
  let rt: RunningTenantRuntime;
  let acme: SeededTenant;
  let bravo: SeededTenant;
  const keys = new Map<string, string>();
  const clients = new Map<string, any>();
  const opened: any[] = [];

  // What an app writes: the slug as user, the key as password, any database name, verify-full.
  const url = (slug: string, key: string) => `postgresql://${slug}:${key}@127.0.0.1:${rt.pg?.port}/app?sslmode=verify-full&sslrootcert=${tls.caFile}`;
  const prismaAt = (connectionString: string) => {
    const { PrismaClient } = generated.load<GeneratedModule>();
    const client = new PrismaClient({ adapter: new PrismaPg({ connectionString }) });
    opened.push(client);
    return client;
  };
  const prismaFor = (slug: string, key: string) => prismaAt(url(slug, key));
  const db = (t: SeededTenant) => clients.get(t.slug);

  beforeAll(async () => {
    // Assigned as each one is ready, so afterAll cleans up whatever started if another failed.
    await Promise.all([
      generatePrismaClient(join(__dirname, 'prisma', 'schema.prisma')).then((g) => (generated = g)),
      createFrontDoorTls(['localhost', '127.0.0.1']).then((t) => (tls = t)),
      startTestControlPlane().then((c) => (cp = c)),
    ]);
    [acme, bravo] = (await createTenants(cp, [{ slug: 'acme' }, { slug: 'bravo' }])) as [SeededTenant, SeededTenant];
    for (const t of [acme, bravo]) keys.set(t.slug, (await issueKey(cp, t)).key);
    rt = await startTestRuntime(cp, { ...tls.env, RUNTIME_MAX_CONNECTIONS: '6', RUNTIME_MAX_CONNECTIONS_PER_TENANT: '3' });
    for (const t of [acme, bravo]) {
      const prisma = prismaFor(t.slug, keys.get(t.slug) as string);
      clients.set(t.slug, prisma);
      expect(await prisma.$executeRawUnsafe(CREATE_TABLE)).toBe(0);
    }
  }, 120_000);
  afterAll(async () => {
    for (const c of opened) await c.$disconnect().catch(() => undefined);
    await rt?.close();
    await cp?.close();
    tls?.remove();
    generated?.remove();
  });

  it('runs create, findMany, update and delete through the model API on each tenant\'s own database', async () => {
    for (const t of [acme, bravo]) {
      const prisma = db(t);
      const first = await prisma.note.create({ data: { body: `${t.slug} one`, tags: ['a', 'b'], meta: { tenant: t.slug, n: 1 }, amount: '12.50' } });
      expect(first).toMatchObject({ body: `${t.slug} one`, done: false, tags: ['a', 'b'], meta: { tenant: t.slug, n: 1 } });
      expect(first.amount.toString()).toBe('12.5');
      expect(first.createdAt).toBeInstanceOf(Date);
      expect((await prisma.note.createMany({ data: [{ body: `${t.slug} two` }, { body: `${t.slug} three`, done: true }] })).count).toBe(2);

      const all = await prisma.note.findMany({ orderBy: { id: 'asc' } });
      expect(all.map((n: { body: string }) => n.body)).toEqual([`${t.slug} one`, `${t.slug} two`, `${t.slug} three`]);
      expect(await prisma.note.findMany({ where: { done: true }, select: { body: true } })).toEqual([{ body: `${t.slug} three` }]);
      expect(await prisma.note.findFirst({ where: { tags: { has: 'b' } }, select: { id: true } })).toEqual({ id: first.id });

      const updated = await prisma.note.update({ where: { id: first.id }, data: { done: true, tags: { push: 'c' } } });
      expect(updated).toMatchObject({ id: first.id, done: true, tags: ['a', 'b', 'c'] });
      expect((await prisma.note.updateMany({ where: { done: false }, data: { meta: { touched: true } } })).count).toBe(1);
      expect(await prisma.note.delete({ where: { id: first.id } })).toMatchObject({ id: first.id });
      expect(await prisma.note.findUnique({ where: { id: first.id } })).toBeNull();
      expect(await prisma.note.count()).toBe(2);
      // A constraint error is Prisma's own code, and the client goes on.
      const second = all[1] as { id: number };
      await expect(prisma.note.create({ data: { id: second.id, body: 'duplicate' } })).rejects.toMatchObject({ code: 'P2002' });
      await expect(prisma.note.update({ where: { id: 999_999 }, data: { done: true } })).rejects.toMatchObject({ code: 'P2025' });
      expect(await prisma.note.count()).toBe(2);
    }
  });

  it('keeps each tenant to its own database and rows', async () => {
    for (const [t, other] of [[acme, bravo], [bravo, acme]] as const) {
      const prisma = db(t);
      await prisma.note.create({ data: { body: `${t.slug} own` } });
      const bodies: string[] = (await prisma.note.findMany({ select: { body: true } })).map((n: { body: string }) => n.body);
      expect(bodies.length).toBeGreaterThan(0);
      expect(bodies.every((b) => b.startsWith(`${t.slug} `))).toBe(true);
      expect(bodies.some((b) => b.startsWith(`${other.slug} `))).toBe(false);
      const [who] = await prisma.$queryRaw`SELECT current_user AS role`;
      expect(who.role).toBe(t.role);
    }
    const [a] = await db(acme).$queryRaw`SELECT current_database() AS name`;
    const [b] = await db(bravo).$queryRaw`SELECT current_database() AS name`;
    expect(a.name).not.toBe(b.name);
  });

  it('commits an interactive $transaction, and rolls it back when its callback throws', async () => {
    for (const t of [acme, bravo]) {
      const prisma = db(t);
      const before = await prisma.note.count();
      const made = await prisma.$transaction(async (tx: any) => {
        const n = await tx.note.create({ data: { body: `${t.slug} in tx` } });
        // The transaction's own writes are visible inside it, on the same backend.
        const [{ pid }] = await tx.$queryRaw`SELECT pg_backend_pid() AS pid`;
        const [{ again }] = await tx.$queryRaw`SELECT pg_backend_pid() AS again`;
        expect(again).toBe(pid);
        await tx.note.update({ where: { id: n.id }, data: { done: true } });
        return tx.note.findUnique({ where: { id: n.id } });
      });
      expect(made).toMatchObject({ body: `${t.slug} in tx`, done: true });
      expect(await prisma.note.count()).toBe(before + 1);

      await expect(prisma.$transaction(async (tx: any) => {
        await tx.note.create({ data: { body: `${t.slug} rolled back` } });
        expect(await tx.note.count()).toBe(before + 2);
        throw new Error('abort');
      })).rejects.toThrow('abort');
      expect(await prisma.note.count()).toBe(before + 1);
      expect(await prisma.note.findFirst({ where: { body: `${t.slug} rolled back` } })).toBeNull();
    }
  });

  it('runs more concurrent queries and interactive transactions than the tenant\'s 3 backends (transaction mode)', async () => {
    const prisma = db(acme);
    const before = await prisma.note.count();
    // Prisma's pool opens up to 10 client connections; the front door shares 3 backends among them.
    const counts = await Promise.all(Array.from({ length: 20 }, () => prisma.note.count()));
    expect(counts).toEqual(Array.from({ length: 20 }, () => before));
    const made = await Promise.all(Array.from({ length: 6 }, (_, i) => prisma.$transaction(async (tx: any) => {
      const n = await tx.note.create({ data: { body: `acme concurrent ${i}` } });
      const [{ pg }] = await tx.$queryRaw`SELECT pg_sleep(0.1)::text AS pg`;
      expect(pg).toBe('');
      return tx.note.update({ where: { id: n.id }, data: { done: true } });
    }, { maxWait: 10_000 })));
    expect(made.every((n: { done: boolean }) => n.done)).toBe(true);
    expect(await prisma.note.count()).toBe(before + 6);
    const [{ n }] = await prisma.$queryRaw`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = current_user AND backend_type = 'client backend'`;
    expect(n).toBeLessThanOrEqual(3);
  });

  it('runs a batch $transaction([...]) all or nothing', async () => {
    for (const t of [acme, bravo]) {
      const prisma = db(t);
      const before = await prisma.note.count();
      const [created, many, count] = await prisma.$transaction([
        prisma.note.create({ data: { body: `${t.slug} batch 1` } }),
        prisma.note.createMany({ data: [{ body: `${t.slug} batch 2` }, { body: `${t.slug} batch 3` }] }),
        prisma.note.count(),
      ]);
      expect(created.body).toBe(`${t.slug} batch 1`);
      expect(many.count).toBe(2);
      expect(count).toBe(before + 3);
      // A failing statement in the batch undoes the ones before it.
      await expect(prisma.$transaction([
        prisma.note.create({ data: { body: `${t.slug} batch lost` } }),
        prisma.note.create({ data: { id: created.id, body: 'duplicate' } }),
      ])).rejects.toMatchObject({ code: 'P2002' });
      expect(await prisma.note.count()).toBe(before + 3);
      expect(await prisma.note.findFirst({ where: { body: `${t.slug} batch lost` } })).toBeNull();
    }
  });

  it('binds $queryRaw parameters (tagged and $queryRawUnsafe) of several types', async () => {
    for (const t of [acme, bravo]) {
      const prisma = db(t);
      const body = `${t.slug} raw's "quoted" body`;
      await prisma.note.create({ data: { body, tags: ['x'] } });
      const found = await prisma.$queryRaw`SELECT body, tags FROM prisma_notes WHERE body = ${body} AND ${'x'} = ANY(tags)`;
      expect(found).toEqual([{ body, tags: ['x'] }]);
      const [typed] = await prisma.$queryRaw`SELECT ${41}::int + 1 AS n, ${true}::boolean AS b, ${new Date(0)}::timestamptz AS d, ${'{"k":1}'}::jsonb AS j, ${null}::text AS z`;
      expect(typed).toEqual({ n: 42, b: true, d: new Date(0), j: { k: 1 }, z: null });
      const unsafe = await prisma.$queryRawUnsafe('SELECT count(*)::int AS n FROM prisma_notes WHERE body LIKE $1', `${t.slug} %`);
      expect(unsafe[0].n).toBe(await prisma.note.count());
      expect(await prisma.$executeRaw`UPDATE prisma_notes SET done = ${true} WHERE body = ${body}`).toBe(1);
    }
  });

  it('refuses a wrong key, another tenant\'s key and an unknown tenant with 28P01 (Prisma: P1000 from the model API, P2010 from raw queries)', async () => {
    const wrongKey = 'silo_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const refusal = (p: Promise<unknown>) => p.then(() => { throw new Error('the query ran'); }, (e: any) => e);
    const authFailed = (user: string) => ({ driverAdapterError: { cause: { originalCode: '28P01', kind: 'AuthenticationFailed', originalMessage: `password authentication failed for user "${user}"` } } });
    for (const [slug, key] of [['acme', wrongKey], ['acme', keys.get('bravo') as string], ['nobody', keys.get('acme') as string]] as const) {
      const prisma = prismaFor(slug, key);
      const model = await refusal(prisma.note.count());
      expect(model).toMatchObject({ name: 'PrismaClientKnownRequestError', code: 'P1000', meta: authFailed(slug) });
      expect(model.message).toContain(`the provided database credentials for \`${slug}\` are not valid`);
      expect(await refusal(prisma.$queryRaw`SELECT 1`)).toMatchObject({ code: 'P2010', meta: authFailed(slug) });
    }
    // The right key still works after all that.
    expect(await db(acme).note.count()).toBeGreaterThan(0);
  });

  it('needs the CA for a verified connection (pg reads sslmode=require as verify-full), and refuses a key without TLS', async () => {
    const base = `postgresql://acme:${keys.get('acme')}@localhost:${rt.pg?.port}/app`;
    const failure = (connectionString: string) => prismaAt(connectionString).note.count().then(() => null, (e: any) => e);
    // By name as well as by address (the certificate has both), with the CA.
    const byName = prismaAt(`${base}?sslmode=verify-full&sslrootcert=${tls.caFile}`);
    expect((await byName.$queryRaw`SELECT current_user AS role`)[0].role).toBe(acme.role);
    expect(await failure(`${base}?sslmode=require`)).toMatchObject({ code: 'P1011', meta: { driverAdapterError: { cause: { kind: 'TlsConnectionError' } } } });
    expect(await failure(base)).toMatchObject({ code: 'P1010', meta: { driverAdapterError: { cause: { originalCode: '28000', kind: 'DatabaseAccessDenied' } } } });
  });
});
