/**
 * A test whose prerequisite (root, a tool) is missing proves nothing. Off CI
 * it is skipped with the reason; under CI (CI set) the missing prerequisite
 * is an error, so a run can never pass by skipping.
 */
export function skipUnlessPresent(missing: string | undefined | false): string | false {
  if (missing === undefined || missing === false) return false;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '') {
    throw new Error(`CI is set and a prerequisite is missing: ${missing}`);
  }
  return missing;
}
