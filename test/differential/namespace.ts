/** Keys of one differential stream: a prefix of its own, so streams never see each other's items. */
export class Namespace {
  constructor(private readonly prefix: string) {}

  key(name: string): string {
    return `${this.prefix}${name}`;
  }

  /** A key of exactly `length` bytes in this namespace. */
  keyOfLength(length: number): string {
    return this.prefix + 'x'.repeat(length - this.prefix.length);
  }
}
