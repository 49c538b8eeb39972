import { inputError } from '../ui/errors.ts';

/**
 * The shape of a setting and the parsers shared by core and driver settings.
 * Kept free of other setting modules so a driver's descriptor can declare its
 * settings without loading the core list.
 */
export type SettingValue = string | number | boolean | string[];

export interface SettingDefinition {
  readonly key: string;
  readonly description: string;
  /** Where the key may be set; `global` keys make no sense per profile. */
  readonly scope: 'any' | 'global';
  readonly defaultValue: SettingValue;
  /** For help: the accepted forms. */
  readonly accepts: string;
  /** The driver that declares this setting; `start` offers it as a flag. */
  readonly driver?: string;
  /** Turns user text (flag, env, `config set`) or a stored value into the canonical value; throws a DevclusterError. */
  parse(raw: string, origin: string): SettingValue;
  format?(value: SettingValue): string;
}

export function invalid(origin: string, raw: string, accepted: string, advice?: string) {
  return inputError('CONFIG_INVALID_VALUE', `${origin}: ${JSON.stringify(raw)} is not valid; accepted: ${accepted}`, advice === undefined ? {} : { advice });
}

/** A parser accepting one of a fixed set of words (any case). */
export function oneOf(values: readonly string[]): SettingDefinition['parse'] {
  return (raw, origin) => {
    const v = raw.trim().toLowerCase();
    if (!values.includes(v)) throw invalid(origin, raw, values.join(', '));
    return v;
  };
}

export function parseBool(raw: string, origin: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw invalid(origin, raw, 'true or false');
}
