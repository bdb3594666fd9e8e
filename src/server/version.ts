/** kai's version, as `version` and `stats` report it. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const kaiVersion: string = (require('../../../package.json') as { version: string }).version;
