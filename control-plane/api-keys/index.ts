// What other deployables (the tenant runtime) may use: the key format only, no Nest or TypeORM.
export { API_KEY_PATTERN, apiKeyPrefix, generateApiKey, hashApiKey } from '../../common/api-key-format';
export type { GeneratedApiKey } from '../../common/api-key-format';
