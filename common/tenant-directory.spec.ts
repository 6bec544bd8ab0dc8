import { createHash } from 'node:crypto';
import { DirectorySigner } from './directory-signer';
import { directoryCodec, DirectoryEntry } from './tenant-directory';

const OLD = 'old-directory-key-0123456789abcdef0123456789';
const NEW = 'new-directory-key-0123456789abcdef0123456789';
const entry: DirectoryEntry = {
  tenantId: '11111111-1111-1111-1111-111111111111', slug: 'acme', status: 'active', tier: 'starter', host: '127.0.0.1', port: 5432,
  database: 't_acme', username: 't_acme', secretRef: 'local:silo/tenants/acme', customDomain: 'db.acme.test', revision: '3:0',
};
const record = { tenantId: entry.tenantId, hash: createHash('sha256').update('k').digest('hex'), revoked: false, expiresAt: null };

describe('directory codec (signed cache records)', () => {
  const signer = new DirectorySigner([OLD]);

  it('round-trips signed entries, domain mappings and key records', () => {
    expect(directoryCodec.decodeEntry(signer, 'acme', directoryCodec.encodeEntry(signer, entry))).toEqual(entry);
    expect(directoryCodec.decodeDomain(signer, 'db.acme.test', directoryCodec.encodeDomain(signer, 'db.acme.test', 'acme'))).toBe('acme');
    expect(directoryCodec.decodeApiKey(signer, 'abcdef012345', directoryCodec.encodeApiKey(signer, 'abcdef012345', record))).toEqual(record);
  });

  it('treats unsigned, tampered, wrongly keyed or moved records as a miss', () => {
    expect(directoryCodec.decodeEntry(signer, 'acme', JSON.stringify(entry))).toBeNull();
    expect(directoryCodec.decodeApiKey(signer, 'abcdef012345', JSON.stringify(record))).toBeNull();
    expect(directoryCodec.decodeDomain(signer, 'db.acme.test', 'acme')).toBeNull();
    const signed = JSON.parse(directoryCodec.encodeEntry(signer, entry));
    expect(directoryCodec.decodeEntry(signer, 'acme', JSON.stringify({ ...signed, database: 't_other', secretRef: 'local:silo/tenants/other' }))).toBeNull();
    const forged = directoryCodec.encodeEntry(new DirectorySigner([NEW]), entry);
    expect(directoryCodec.decodeEntry(signer, 'acme', forged)).toBeNull();
    // A genuine entry of another tenant copied under this slug's key does not verify.
    const other = directoryCodec.encodeEntry(signer, { ...entry, slug: 'globex' });
    expect(directoryCodec.decodeEntry(signer, 'acme', other)).toBeNull();
    const key = directoryCodec.encodeApiKey(signer, 'abcdef012345', record);
    expect(directoryCodec.decodeApiKey(signer, '999999999999', key)).toBeNull();
    expect(directoryCodec.decodeEntry(signer, 'acme', 'not json')).toBeNull();
  });

  it('rolls the key: the first signs, every listed key verifies', () => {
    const rolled = new DirectorySigner([NEW, OLD]);
    expect(directoryCodec.decodeEntry(rolled, 'acme', directoryCodec.encodeEntry(signer, entry))).toEqual(entry);
    const byNew = directoryCodec.encodeEntry(rolled, entry);
    expect(directoryCodec.decodeEntry(new DirectorySigner([NEW]), 'acme', byNew)).toEqual(entry);
    expect(directoryCodec.decodeEntry(signer, 'acme', byNew)).toBeNull();
  });
});
