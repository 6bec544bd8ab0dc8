import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/**
 * A SCRAM-SHA-256 verifier in PostgreSQL's stored format. Sending the verifier instead of the
 * password means the plaintext never reaches the server (nor its statement log).
 * Valid for ASCII passwords, which is all Silo generates (SASLprep is the identity there).
 */
export async function scramVerifier(password: string, iterations = 4096): Promise<string> {
  const salt = randomBytes(16);
  // Async: 4096 PBKDF2 rounds would otherwise block the event loop for milliseconds.
  const salted = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** 32 random bytes, URL-safe: no quoting issues in connection strings. */
export function generatePassword(): string {
  return randomBytes(32).toString('base64url');
}
