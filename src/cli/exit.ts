/**
 * How the `kai` command ends. Exit codes: 0 after a clean stop (or a command that succeeded), 1
 * when the node fails to start or stop or a command fails (an unreachable node), 2 for a usage or
 * settings error. Errors are one line on stderr, `kai: <message>`.
 */
export const exitCodes = { stopped: 0, failed: 1, usage: 2 } as const;

export function exitWithError(message: string, exitCode: number): never {
  process.stderr.write(`kai: ${message}\n`);
  process.exit(exitCode);
}
