import { inputError } from '../ui/errors.ts';

export const DEFAULT_PROFILE = 'devcluster';

const PROFILE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Names Windows refuses as file names whatever the extension. */
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/;

export function validateProfileName(name: string): string {
  if (!PROFILE_NAME.test(name) || WINDOWS_RESERVED.test(name)) {
    const shown = JSON.stringify(name);
    throw inputError('PROFILE_INVALID_NAME', `${shown} is not a valid profile name`, {
      advice: 'A profile name is 1 to 63 characters: lowercase letters, digits and dashes, starting with a letter or digit (e.g. "devcluster", "dev-2"). Windows device names (con, nul, com1, ...) are not allowed.',
    });
  }
  return name;
}
