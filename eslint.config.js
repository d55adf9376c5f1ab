// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

// Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no I/O libraries, no zod
// (it inflates isolate memory, sdk-typescript#2227). Types may still be imported.
const forbiddenInWorkflows = [
  ...builtinModules.flatMap((m) => [m, `node:${m}`]),
  'zod',
  '@octokit/rest',
  '@kubernetes/client-node',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/activity',
];

// What ships (src/) never reaches into what tests and demos it: the emulators (packages/), the dev stack and sandbox
// (dev/), tests, benchmarks, or a package that is only a dev dependency.
const harness = {
  patterns: [
    {
      group: ['**/dev/**', '**/packages/**', '**/test/**', '**/bench/**', '@flui/*'],
      message: 'Product code (src/) must not import the harness (emulators, dev stack, tests).',
    },
    {
      group: [
        '@temporalio/testing',
        '@temporalio/proto',
        'tsx',
        'tsx/*',
        'fast-check',
        'playwright-core',
        'tar-stream',
      ],
      message: 'A dev dependency is not installed where Flui runs: declare it in dependencies, or keep it out of src/.',
    },
  ],
};

export default tseslint.config(
  { ignores: ['**/node_modules/**', 'dist/**', '.flui/**', 'test-results/**', 'examples/*/repo/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/workflows/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', harness] },
  },
  {
    // Adapters (CI backends, registry client, Kubernetes) know nothing of Temporal: they throw ServiceError
    // (src/errors.ts) and src/activities/failures.ts translates, in one place.
    files: ['src/ci/**/*.ts', 'src/registry/**/*.ts', 'src/kube/**/*.ts', 'src/errors.ts', 'src/build/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            ...harness.patterns,
            {
              group: ['@temporalio/*', '**/activities/**', '**/workflows/deploy.ts', '**/workflows/index.ts'],
              message:
                'Adapters must not know Temporal: throw a ServiceError (src/errors.ts); activities translate it.',
              allowTypeImports: false,
            },
          ],
        },
      ],
    },
  },
  {
    // The self-hosted backend is the Temporal-native one: its builds are Temporal workflows, so it starts, describes,
    // queries and cancels them with a Temporal client. Only the client: it still throws ServiceError, never a failure.
    files: ['src/ci/self-hosted/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            ...harness.patterns,
            {
              group: [
                '@temporalio/*',
                '!@temporalio/client',
                '**/activities/**',
                '**/workflows/deploy.ts',
                '**/workflows/index.ts',
              ],
              message: 'The self-hosted backend may use the Temporal client, nothing else of Temporal.',
              allowTypeImports: false,
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: forbiddenInWorkflows.map((name) => ({
            name,
            message: 'Workflow code must stay deterministic: do this in an activity.',
            allowTypeImports: true,
          })),
          patterns: harness.patterns,
        },
      ],
    },
  },
);
