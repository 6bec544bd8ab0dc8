import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  InternalServiceError,
  InvalidRequestException,
  ListSecretsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { AwsSecretStore } from './aws-secret-store';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:silo/tenants/t-1/runtime-AbCdEf';
const PASSWORD = 'p4ss-W0rd-that-must-never-leak';
const VALUE = { username: 'tenant_rt', password: PASSWORD };

const meta = { $metadata: { httpStatusCode: 400, requestId: 'req-1' } };
const notFound = () => new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", ...meta });

async function caught(p: Promise<unknown>): Promise<SiloError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SiloError) return e;
    throw e;
  }
  throw new Error('expected a SiloError');
}

describe('AwsSecretStore', () => {
  const client = new SecretsManagerClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const sm = mockClient(client);
  let store: AwsSecretStore;

  beforeEach(() => {
    sm.reset();
    store = new AwsSecretStore(client, { kmsKeyId: 'alias/silo/secrets' });
  });

  describe('create', () => {
    it('creates <prefix><name> with the value, KMS key and tags, and returns the ARN', async () => {
      sm.on(CreateSecretCommand).resolves({ ARN, Name: 'silo/tenants/t-1/runtime' });
      expect(await store.create('t-1/runtime', VALUE, { tenantId: 't-1' })).toBe(ARN);
      const [call] = sm.commandCalls(CreateSecretCommand);
      expect(call.args[0].input).toEqual({
        Name: 'silo/tenants/t-1/runtime',
        SecretString: JSON.stringify(VALUE),
        KmsKeyId: 'alias/silo/secrets',
        Tags: [{ Key: 'managed-by', Value: 'silo' }, { Key: 'silo:tenant-id', Value: 't-1' }],
      });
    });

    it('is idempotent: an existing secret is described and its ARN returned, value untouched', async () => {
      sm.on(CreateSecretCommand).rejects(new ResourceExistsException({ message: 'already exists', ...meta }));
      sm.on(DescribeSecretCommand, { SecretId: 'silo/tenants/t-1/runtime' }).resolves({ ARN });
      expect(await store.create('t-1/runtime', VALUE)).toBe(ARN);
      expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    });

    it('uses a custom prefix and omits the tenant tag when no tenant is given', async () => {
      sm.on(CreateSecretCommand).resolves({ ARN });
      await new AwsSecretStore(client, { prefix: 'acme/' }).create('db', VALUE);
      expect(sm.commandCalls(CreateSecretCommand)[0].args[0].input).toMatchObject({
        Name: 'acme/db',
        KmsKeyId: undefined,
        Tags: [{ Key: 'managed-by', Value: 'silo' }],
      });
    });

    it('maps other failures to SECRET_STORE_FAILED without the value', async () => {
      sm.on(CreateSecretCommand).rejects(new InternalServiceError({ message: `boom ${PASSWORD}`, ...meta }));
      const err = await caught(store.create('t-1/runtime', VALUE));
      expect(err.code).toBe(ErrorCode.SECRET_STORE_FAILED);
      expect(err.message).toContain('InternalServiceError');
      expect(err.message).not.toContain(PASSWORD);
      expect(JSON.stringify(err.details)).not.toContain(PASSWORD);
    });
  });

  describe('get', () => {
    it('returns the parsed secret', async () => {
      sm.on(GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: JSON.stringify({ ...VALUE, engine: 'postgres' }) });
      expect(await store.get(ARN)).toEqual(VALUE);
    });

    it('keeps the IAM fields of a tenant connection secret, and refuses one without a region', async () => {
      const iam = { username: 'tenant_app', password: '', auth: 'iam', region: 'eu-west-1', masterSecretRef: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-x' };
      sm.on(GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: JSON.stringify({ ...iam, extra: 1 }) });
      expect(await store.get(ARN)).toEqual(iam);
      sm.on(GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: JSON.stringify({ ...iam, region: undefined }) });
      expect((await caught(store.get(ARN))).code).toBe(ErrorCode.SECRET_STORE_FAILED);
    });

    it('maps ResourceNotFoundException to SECRET_NOT_FOUND', async () => {
      sm.on(GetSecretValueCommand).rejects(notFound());
      const err = await caught(store.get(ARN));
      expect(err.code).toBe(ErrorCode.SECRET_NOT_FOUND);
      expect(err.status).toBe(404);
    });

    it('treats a secret scheduled for deletion as not found', async () => {
      sm.on(GetSecretValueCommand).rejects(new InvalidRequestException({
        message: "You can't perform this operation on the secret because it was marked for deletion.", ...meta,
      }));
      expect((await caught(store.get(ARN))).code).toBe(ErrorCode.SECRET_NOT_FOUND);
    });

    it('rejects a value that is not JSON without quoting it', async () => {
      sm.on(GetSecretValueCommand).resolves({ SecretString: `password=${PASSWORD}` });
      const err = await caught(store.get(ARN));
      expect(err.code).toBe(ErrorCode.SECRET_STORE_FAILED);
      expect(err.message).not.toContain(PASSWORD);
    });

    it('rejects JSON without a username and password, without quoting it', async () => {
      sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ pass: PASSWORD }) });
      const err = await caught(store.get(ARN));
      expect(err.code).toBe(ErrorCode.SECRET_STORE_FAILED);
      expect(err.message).not.toContain(PASSWORD);
    });
  });

  describe('rotate', () => {
    it('puts a new version with a fresh client request token each time', async () => {
      sm.on(PutSecretValueCommand).resolves({ ARN, VersionId: 'v2' });
      await store.rotate(ARN, VALUE);
      await store.rotate(ARN, VALUE);
      const inputs = sm.commandCalls(PutSecretValueCommand).map((c) => c.args[0].input);
      expect(inputs[0]).toMatchObject({ SecretId: ARN, SecretString: JSON.stringify(VALUE) });
      expect(inputs[0].ClientRequestToken).toMatch(/^[0-9a-f-]{36}$/);
      expect(inputs[1].ClientRequestToken).not.toBe(inputs[0].ClientRequestToken);
    });

    it('maps a missing secret to SECRET_NOT_FOUND without the new value', async () => {
      sm.on(PutSecretValueCommand).rejects(notFound());
      const err = await caught(store.rotate(ARN, VALUE));
      expect(err.code).toBe(ErrorCode.SECRET_NOT_FOUND);
      expect(err.message).not.toContain(PASSWORD);
    });

    it('rotates an RDS-managed secret with RotateSecret, immediately', async () => {
      sm.on(RotateSecretCommand).resolves({ ARN });
      await store.rotateManaged(ARN);
      expect(sm.commandCalls(RotateSecretCommand)[0].args[0].input).toMatchObject({ SecretId: ARN, RotateImmediately: true });
    });
  });

  describe('delete', () => {
    it.each([
      [0, 7],
      [3, 7],
      [7, 7],
      [14, 14],
      [30, 30],
      [90, 30],
    ])('clamps a %d-day recovery window to %d (AWS allows 7..30)', async (asked, sent) => {
      sm.on(DeleteSecretCommand).resolves({ ARN });
      await store.delete(ARN, { recoveryWindowDays: asked });
      expect(sm.commandCalls(DeleteSecretCommand)[0].args[0].input).toEqual({ SecretId: ARN, RecoveryWindowInDays: sent });
    });

    it('succeeds when the secret is already gone or already scheduled for deletion', async () => {
      sm.on(DeleteSecretCommand).rejectsOnce(notFound()).rejectsOnce(new InvalidRequestException({
        message: "You can't perform this operation on the secret because it was already scheduled for deletion.", ...meta,
      }));
      await expect(store.delete(ARN, { recoveryWindowDays: 7 })).resolves.toBeUndefined();
      await expect(store.delete(ARN, { recoveryWindowDays: 7 })).resolves.toBeUndefined();
    });

    it('fails on other errors', async () => {
      sm.on(DeleteSecretCommand).rejects(new InvalidRequestException({ message: 'something else', ...meta }));
      expect((await caught(store.delete(ARN, { recoveryWindowDays: 7 }))).code).toBe(ErrorCode.SECRET_STORE_FAILED);
    });
  });

  describe('list', () => {
    it('follows NextToken across pages, filters by prefixed name and skips deleted secrets', async () => {
      const a = `${ARN}-a`;
      const b = `${ARN}-b`;
      const c = `${ARN}-c`;
      sm.on(ListSecretsCommand)
        .resolvesOnce({ SecretList: [{ ARN: a, Name: 'silo/tenants/t-1/a' }, { ARN: 'x', Name: 'silo/tenants/t-1/old', DeletedDate: new Date() }], NextToken: 'page-2' })
        .resolvesOnce({ SecretList: [{ ARN: b, Name: 'silo/tenants/t-1/b' }, { ARN: 'y', Name: 'other/t-1' }], NextToken: 'page-3' })
        .resolvesOnce({ SecretList: [{ ARN: c, Name: 'silo/tenants/t-1/c' }] });

      expect(await store.list('t-1/')).toEqual([a, b, c]);
      const inputs = sm.commandCalls(ListSecretsCommand).map((call) => call.args[0].input);
      expect(inputs.map((i) => i.NextToken)).toEqual([undefined, 'page-2', 'page-3']);
      for (const input of inputs) expect(input.Filters).toEqual([{ Key: 'name', Values: ['silo/tenants/t-1/'] }]);
    });

    it('maps a failure to SECRET_STORE_FAILED', async () => {
      sm.on(ListSecretsCommand).rejects(new InternalServiceError({ message: 'x', ...meta }));
      expect((await caught(store.list(''))).code).toBe(ErrorCode.SECRET_STORE_FAILED);
    });
  });
});
