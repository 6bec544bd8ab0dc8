import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const IV = 12;
const TAG = 16;

/** AES-256-GCM; output is iv | tag | ciphertext. `aad` binds the ciphertext to its owner (e.g. the secret name). */
export function seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ct]);
}

/** Throws if the key is wrong or the bytes or aad were tampered with. */
export function open(key: Buffer, sealed: Buffer, aad: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(sealed.subarray(IV, IV + TAG));
  return Buffer.concat([decipher.update(sealed.subarray(IV + TAG)), decipher.final()]);
}

/** Envelope: a fresh data key encrypts the value; the master key wraps the data key. */
export function envelopeEncrypt(masterKey: Buffer, plaintext: Buffer, aad: string): { wrappedKey: Buffer; ciphertext: Buffer } {
  const dataKey = randomBytes(32);
  try {
    return { wrappedKey: seal(masterKey, dataKey, `key:${aad}`), ciphertext: seal(dataKey, plaintext, aad) };
  } finally {
    dataKey.fill(0);
  }
}

export function envelopeDecrypt(masterKey: Buffer, wrappedKey: Buffer, ciphertext: Buffer, aad: string): Buffer {
  const dataKey = open(masterKey, wrappedKey, `key:${aad}`);
  try {
    return open(dataKey, ciphertext, aad);
  } finally {
    dataKey.fill(0);
  }
}
