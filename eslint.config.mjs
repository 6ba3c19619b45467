// ESLint (flat config): the recommended rules on every JS file we write. Run by tools/lint.sh.
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['web/dist/**', 'node_modules/**', 'build/**', 'tests/artifacts/**', 'types/**'] },
  js.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 'latest',
      sourceType: 'module',
      // The package runs in Node, pages and Web Workers alike.
      globals: { ...globals.node, ...globals.browser, ...globals.worker },
    },
    rules: {
      // `const { bytes, ...doc } = r` drops a field on purpose.
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Control characters in patterns are how names are checked for them (terminal and CSV safety).
      'no-control-regex': 'off',
    },
  },
];
