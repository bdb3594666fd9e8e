// Tests are compiled by `tsc` with the rest of the project and run from dist/,
// so integration tests exercise exactly the JavaScript that bin/kai runs.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  testTimeout: 30000,
  maxWorkers: 2,
};
