// Small IPv4 helpers shared by config validation and the IMDS double.

function ipv4ToInt(ip: string): number | null {
  const parts = ip.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

function parseCidr(c: string): { base: number; bits: number } | null {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(c);
  if (!m) return null;
  const base = ipv4ToInt(m[1]!);
  const bits = Number(m[2]);
  if (base === null || bits > 32) return null;
  return { base, bits };
}

export function isCidr(c: string): boolean {
  return parseCidr(c) !== null;
}

/** True when two IPv4 CIDR blocks share any address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y) throw new Error(`not an IPv4 CIDR: ${x ? b : a}`);
  const bits = Math.min(x.bits, y.bits);
  const size = 2 ** (32 - bits);
  return Math.floor(x.base / size) === Math.floor(y.base / size);
}
