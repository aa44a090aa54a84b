// ESLint: typescript-eslint's recommended rules, and the workflow sandbox rule of ../shared/DESIGN.md:
// workflow code is deterministic, so it may not import Node builtins or the libraries that touch the
// world (pg, execa, @kubernetes/client-node); `import type` from activities stays allowed.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const worldTouching = ['pg', 'execa', '@kubernetes/client-node'];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'test/replay/histories/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        Buffer: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [...builtinModules, ...builtinModules.map((m) => `node:${m}`), ...worldTouching].map((name) => ({
            name,
            message: 'Workflow code must be deterministic: do this in an activity (see ../shared/DESIGN.md).',
            allowTypeImports: true,
          })),
          patterns: [
            {
              group: ['**/activities/*', '!**/activities/index.js'],
              message: 'Workflows import activities only as types, through activities/index.js.',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
);
