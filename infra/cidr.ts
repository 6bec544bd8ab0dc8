/**
 * The `index`-th subnet of size `/prefix` inside `cidr` (IPv4 only), computed at synth time so the
 * plan shows literal CIDRs. Throws when the subnet does not fit.
 */
export function subnetCidr(cidr: string, prefix: number, index: number): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new Error(`not an IPv4 CIDR: ${cidr}`);
  const octets = m.slice(1, 5).map(Number);
  const base = Number(m[5]);
  if (octets.some((o) => o > 255) || base > 32) throw new Error(`not an IPv4 CIDR: ${cidr}`);
  if (!Number.isInteger(prefix) || prefix < base || prefix > 32) throw new Error(`/${prefix} does not fit in ${cidr}`);
  if (!Number.isInteger(index) || index < 0 || index >= 2 ** (prefix - base)) {
    throw new Error(`subnet ${index} of /${prefix} does not fit in ${cidr}`);
  }
  const network = octets.reduce((acc, o) => acc * 256 + o, 0);
  const addr = network - (network % 2 ** (32 - base)) + index * 2 ** (32 - prefix);
  return `${[24, 16, 8, 0].map((s) => Math.floor(addr / 2 ** s) % 256).join('.')}/${prefix}`;
}
