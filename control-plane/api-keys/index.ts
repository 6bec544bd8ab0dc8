// What other deployables (the tenant runtime) may use: the key format only, no Nest or TypeORM.
export { API_KEY_PATTERN, apiKeyPrefix, apiKeyScramParams, apiKeyScramVerifier, generateApiKey, hashApiKey, SCRAM_ITERATIONS, scramVerifier } from '../../common/api-key-format';
export type { GeneratedApiKey, ScramVerifier } from '../../common/api-key-format';
