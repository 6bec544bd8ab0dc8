import { subnetCidr } from './cidr';

describe('subnetCidr', () => {
  it('carves consecutive subnets out of a network', () => {
    expect([0, 1, 2, 8, 15].map((i) => subnetCidr('10.40.0.0/16', 20, i))).toEqual([
      '10.40.0.0/20',
      '10.40.16.0/20',
      '10.40.32.0/20',
      '10.40.128.0/20',
      '10.40.240.0/20',
    ]);
    expect(subnetCidr('192.168.4.0/22', 24, 3)).toBe('192.168.7.0/24');
  });

  it('refuses subnets that do not fit and malformed input', () => {
    expect(() => subnetCidr('10.40.0.0/16', 20, 16)).toThrow('does not fit');
    expect(() => subnetCidr('10.40.0.0/16', 12, 0)).toThrow('does not fit');
    expect(() => subnetCidr('10.400.0.0/16', 20, 0)).toThrow('not an IPv4 CIDR');
    expect(() => subnetCidr('fd00::/8', 16, 0)).toThrow('not an IPv4 CIDR');
  });
});
