import { libpqTlsEnv, urlTls } from './libpq-url';

describe('urlTls', () => {
  it('reads sslmode and the certificate paths, as libpq does', () => {
    const tls = urlTls('postgres://u:p@db.internal:5432/x?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/c.pem&sslkey=/k.pem');
    expect(tls).toEqual({ sslmode: 'verify-full', sslrootcert: '/etc/ca.pem', sslcert: '/c.pem', sslkey: '/k.pem' });
    expect(libpqTlsEnv(tls)).toEqual({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: '/etc/ca.pem', PGSSLCERT: '/c.pem', PGSSLKEY: '/k.pem' });
  });

  it('defaults to prefer, maps node-postgres ssl=true to require, and refuses an unknown mode', () => {
    expect(urlTls('postgres://u@h/x')).toEqual({ sslmode: 'prefer' });
    expect(urlTls('postgres://u@h/x?ssl=true')).toEqual({ sslmode: 'require' });
    expect(() => urlTls('postgres://u@h/x?sslmode=maybe')).toThrow('unsupported sslmode "maybe"');
  });
});
