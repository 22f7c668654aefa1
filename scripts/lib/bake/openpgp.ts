// The fingerprint of an OpenPGP public key, so a key fetched at bake time can be held to the one
// pinned in the config (Debian 13 has no gpg to ask; sqv verifies signatures, it does not print
// fingerprints). RFC 4880 / RFC 9580: ASCII armor (section 6) around packets (section 4.2: old
// and new header formats); the first packet of a transferable public key is the primary key
// (tag 6); a version 4 key's fingerprint is SHA-1 over 0x99, the two-octet body length and the
// body (RFC 4880 section 12.2); a version 6 key's is SHA-256 over 0x9B, a four-octet length and
// the body (RFC 9580 section 5.5.4).
import { createHash } from 'node:crypto';

function dearmor(text: string): Buffer {
  const m = /-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n([\s\S]*?)-----END PGP PUBLIC KEY BLOCK-----/.exec(text);
  if (!m) throw new Error('not an ASCII-armored OpenPGP public key (no BEGIN PGP PUBLIC KEY BLOCK)');
  const lines = m[1]!.split(/\r?\n/);
  // Armor headers ("Comment: ...") end at the first empty line, when there are any.
  const blank = lines.findIndex((l) => l.trim() === '');
  const body = (lines.slice(0, Math.max(blank, 0)).every((l) => /^[\w-]+: /.test(l)) ? lines.slice(blank + 1) : lines)
    .filter((l) => l.trim() !== '' && !l.startsWith('='));
  return Buffer.from(body.join(''), 'base64');
}

/** The primary key packet's body (tag 6), from binary OpenPGP data. */
function primaryKeyBody(data: Buffer): Buffer {
  if (data.length < 2 || (data[0]! & 0x80) === 0) throw new Error('not OpenPGP packet data');
  const b = data[0]!;
  let tag: number;
  let len: number;
  let off: number;
  if (b & 0x40) {
    tag = b & 0x3f;
    const o1 = data[1]!;
    if (o1 < 192) [len, off] = [o1, 2];
    else if (o1 < 224) [len, off] = [((o1 - 192) << 8) + data[2]! + 192, 3];
    else if (o1 === 255) [len, off] = [data.readUInt32BE(2), 6];
    else throw new Error('a partial-length primary key packet is not valid');
  } else {
    tag = (b >> 2) & 0x0f;
    const lt = b & 3;
    if (lt === 0) [len, off] = [data[1]!, 2];
    else if (lt === 1) [len, off] = [data.readUInt16BE(1), 3];
    else if (lt === 2) [len, off] = [data.readUInt32BE(1), 5];
    else throw new Error('an indeterminate-length primary key packet is not valid');
  }
  if (tag !== 6) throw new Error(`the first packet is tag ${tag}, not a public key (6)`);
  if (off + len > data.length) throw new Error('the primary key packet is truncated');
  return data.subarray(off, off + len);
}

/** The upper-case hex fingerprint of a public key's primary key: ASCII-armored text or binary packets. */
export function openpgpFingerprint(key: string | Buffer): string {
  const text = typeof key === 'string' ? key : key.subarray(0, 64).toString('latin1').includes('-----BEGIN') ? key.toString('utf8') : null;
  const body = primaryKeyBody(text !== null ? dearmor(text) : (key as Buffer));
  const version = body[0];
  if (version === 4) {
    const head = Buffer.from([0x99, (body.length >> 8) & 0xff, body.length & 0xff]);
    return createHash('sha1').update(head).update(body).digest('hex').toUpperCase();
  }
  if (version === 6) {
    const head = Buffer.alloc(5);
    head[0] = 0x9b;
    head.writeUInt32BE(body.length, 1);
    return createHash('sha256').update(head).update(body).digest('hex').toUpperCase();
  }
  throw new Error(`OpenPGP key version ${version} is not supported (4 and 6 are)`);
}
