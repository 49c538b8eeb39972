/**
 * Typed errors with stable IDs and exit codes.
 *
 * Exit codes follow a decade scheme (like minikube's) so scripts can branch on
 * the source of a failure; docs/errors.md is generated from ERROR_CATALOG.
 */

export type ErrorCategory =
  | 'general'
  | 'usage'
  | 'program'
  | 'resource'
  | 'host'
  | 'internet'
  | 'hypervisor'
  | 'network'
  | 'guest'
  | 'runtime'
  | 'kubernetes';

/** The first exit code of each category's decade. */
export const CATEGORY_BASE: Readonly<Record<ErrorCategory, number>> = {
  general: 1,
  usage: 2,
  program: 10,
  resource: 20,
  host: 30,
  internet: 40,
  hypervisor: 60,
  network: 70,
  guest: 80,
  runtime: 90,
  kubernetes: 100,
};

export interface ErrorDefinition {
  readonly category: ErrorCategory;
  readonly exitCode: number;
  /** What the error means, for docs/errors.md. */
  readonly meaning: string;
}

function def(category: ErrorCategory, exitCode: number, meaning: string): ErrorDefinition {
  return { category, exitCode, meaning };
}

/**
 * Every error ID devcluster can raise. Adding one here is the only way to make
 * it raisable, which keeps the documented list complete.
 */
export const ERROR_CATALOG = {
  INTERNAL_ERROR: def('general', 1, 'An unexpected error inside devcluster (a bug): the log file has the stack trace.'),
  INTERRUPTED: def('general', 130, 'The command was interrupted (Ctrl-C or SIGTERM).'),

  USAGE_UNKNOWN_COMMAND: def('usage', 2, 'The command or subcommand does not exist.'),
  USAGE_INVALID_ARGUMENT: def('usage', 2, 'A command-line argument or option is missing or malformed.'),
  PROFILE_INVALID_NAME: def('usage', 2, 'A profile name is not a valid name.'),
  CONFIG_UNKNOWN_KEY: def('usage', 2, 'The configuration key does not exist.'),
  CONFIG_INVALID_VALUE: def('usage', 2, 'A configuration value (flag, environment variable or config file) is malformed or out of range.'),
  DRIVER_UNKNOWN: def('usage', 2, 'The driver name is not one devcluster knows.'),
  KUBERNETES_VERSION_INVALID: def('usage', 2, 'The Kubernetes version is not of the form v1.N.N, stable or latest.'),
  KUBERNETES_VERSION_UNSUPPORTED: def('usage', 2, 'The Kubernetes version (given, or what stable/latest names) is not one this devcluster installs; the message lists the supported ones.'),
  KUBERNETES_VERSION_UNRESOLVED: def('internet', 47, 'kubernetes-version stable or latest could not be looked up (offline, or <kubernetes-release-url>/stable.txt unreachable or not a version); pin a supported version instead.'),
  OUTPUT_FORMAT_INVALID: def('usage', 2, 'The --output format is not one the command supports.'),

  PROFILE_BUSY: def('program', 11, 'Another devcluster command is changing the same profile.'),
  PROFILE_NOT_FOUND: def('program', 15, 'The profile does not exist.'),
  CONFIG_FILE_CORRUPT: def('program', 18, 'A configuration or state file cannot be parsed.'),
  HOME_NOT_A_DIRECTORY: def('program', 13, '$DEVCLUSTER_HOME (default ~/.devcluster) is a file, or a part of its path is: devcluster keeps its files in a directory there.'),
  FILE_UNREADABLE: def('resource', 27, 'A configuration or state file exists but cannot be read (permission denied, a directory in its place, an I/O error); the message names the file and the system error.'),
  LOCK_TIMEOUT: def('program', 12, 'Waiting for the profile lock took too long.'),

  HOST_MEMORY_TOO_LOW: def('resource', 23, 'The requested memory is more than this host has.'),
  HOST_CPUS_TOO_FEW: def('resource', 29, 'The requested CPU count is more than this host has.'),
  HOST_DISK_FULL: def('resource', 26, 'Not enough free disk space.'),
  HOST_PERMISSION_DENIED: def('resource', 27, 'A file or directory devcluster needs cannot be written.'),

  HOST_UNSUPPORTED: def('host', 36, 'This operating system or architecture is not supported for the request.'),
  HOST_NEEDS_ROOT: def('host', 37, 'The operation needs root (Linux/macOS) or Administrator (Windows).'),
  HOST_COMMAND_NOT_FOUND: def('host', 35, 'An external program devcluster needs is not installed or not on PATH.'),
  HOST_COMMAND_FAILED: def('host', 30, 'An external program exited with an error.'),
  HOST_COMMAND_TIMEOUT: def('host', 32, 'An external program did not finish within its time limit.'),
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorId = keyof typeof ERROR_CATALOG;

/**
 * Other modules extend the catalog with their own IDs (images, drivers, the
 * doctor) through registerErrors, so each concern owns its IDs.
 */
const extraErrors = new Map<string, ErrorDefinition>();

export function registerErrors(defs: Record<string, ErrorDefinition>): void {
  for (const [id, d] of Object.entries(defs)) {
    if (id in ERROR_CATALOG || (extraErrors.has(id) && extraErrors.get(id) !== d)) {
      throw new Error(`error ID ${id} is defined twice`);
    }
    extraErrors.set(id, d);
  }
}

export function errorDefinition(id: string): ErrorDefinition | undefined {
  return (ERROR_CATALOG as Record<string, ErrorDefinition>)[id] ?? extraErrors.get(id);
}

export function allErrorDefinitions(): Array<[string, ErrorDefinition]> {
  return [...Object.entries(ERROR_CATALOG as Record<string, ErrorDefinition>), ...extraErrors.entries()];
}

export { def as errorDef };

export interface DevclusterErrorOptions {
  advice?: string;
  docs?: string;
  cause?: unknown;
  /** Extra facts for the log and --output json (never secrets). */
  details?: Record<string, unknown>;
  /**
   * True when the error is about what the user typed: nothing was attempted,
   * so no log file is written and $DEVCLUSTER_HOME is left untouched.
   */
  input?: boolean;
}

export class DevclusterError extends Error {
  readonly id: string;
  readonly exitCode: number;
  readonly advice: string | undefined;
  readonly docs: string | undefined;
  readonly details: Record<string, unknown>;
  readonly input: boolean;

  constructor(id: string, message: string, options: DevclusterErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const definition = errorDefinition(id);
    if (definition === undefined) throw new Error(`unknown error ID ${id}: add it to the error catalog`);
    this.name = 'DevclusterError';
    this.id = id;
    this.exitCode = definition.exitCode;
    this.advice = options.advice;
    this.docs = options.docs;
    this.details = options.details ?? {};
    this.input = options.input ?? definition.category === 'usage';
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      exitCode: this.exitCode,
      message: this.message,
      ...(this.advice === undefined ? {} : { advice: this.advice }),
      ...(this.docs === undefined ? {} : { docs: this.docs }),
      ...(Object.keys(this.details).length === 0 ? {} : { details: this.details }),
    };
  }
}

/** Shorthand for an error about user input (exit 2 family unless the ID says otherwise). */
export function inputError(id: string, message: string, options: Omit<DevclusterErrorOptions, 'input'> = {}): DevclusterError {
  return new DevclusterError(id, message, { ...options, input: true });
}

export function isDevclusterError(e: unknown): e is DevclusterError {
  return e instanceof DevclusterError;
}

export const DOCS_BASE = 'https://github.com/devcluster/devcluster/blob/main/docs';
