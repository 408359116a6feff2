import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.gpufed/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      complexity: ['error', 15],
      'max-depth': ['error', 4],
      'no-console': 'off',
    },
  },
  // In tests, optional chaining inside assertions counts as branches; complexity says nothing there.
  { files: ['**/*.test.ts', 'test/**/*.ts'], rules: { complexity: 'off' } },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  // Plain JS here is Node code (config files, Jest's global setup).
  { files: ['**/*.js'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
);
