import assert from 'node:assert/strict';
import { DevclusterError } from '../../src/ui/errors.ts';

/** An assert.rejects/throws matcher: a DevclusterError with this ID, then any further checks. */
export function isError(id: string, check?: (e: DevclusterError) => void): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof DevclusterError, `expected a DevclusterError, got ${String(e)}`);
    assert.equal(e.id, id, `${e.id}: ${e.message}`);
    check?.(e);
    return true;
  };
}

/** Awaits a promise that must reject with a DevclusterError of this ID, and returns that error for further checks. */
export async function rejectsWith(promise: Promise<unknown>, id: string): Promise<DevclusterError> {
  let caught: DevclusterError | undefined;
  await assert.rejects(promise, isError(id, (e) => {
    caught = e;
  }));
  return caught as DevclusterError;
}
