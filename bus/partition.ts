/**
 * Partition hashing. FNV-1a 32-bit over the UTF-8 bytes of the key, mod `partitions`: the same
 * hash nats-server's `{{partition(n, tokens...)}}` subject mapping uses (it hashes the
 * concatenated tokens), so the server can do the same mapping later.
 */

const FNV_OFFSET_32 = 0x811c9dc5;
const FNV_PRIME_32 = 0x01000193;
const encoder = new TextEncoder();

export function fnv1a32(key: string): number {
  const bytes = encoder.encode(key);
  let hash = FNV_OFFSET_32;
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, FNV_PRIME_32) >>> 0;
  }
  return hash >>> 0;
}

export function partitionOf(key: string, partitions: number): number {
  return fnv1a32(key) % partitions;
}
